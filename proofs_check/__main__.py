import sys

import ufm.cli

ufm.cli.use_compile_profile("fast")  # many distinct small programs: compiling is most of the run
ufm.cli.enable_compilation_cache()

from proofs_check.verify import main  # noqa: E402  (after the profile: nothing may start JAX first)

sys.exit(main(sys.argv[1:]))
