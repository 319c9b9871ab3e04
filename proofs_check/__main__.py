import sys

import ufm.cli
from proofs_check.verify import main

ufm.cli.enable_compilation_cache()
sys.exit(main(sys.argv[1:]))
