import sys

import ufm.cli
from proofs_check.verify import main

ufm.cli.use_compile_profile("fast")  # many distinct small programs: compiling is most of the run
ufm.cli.enable_compilation_cache()
sys.exit(main(sys.argv[1:]))
