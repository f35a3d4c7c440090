"""``python3 -m deploy.runtime`` (tests) or ``python3 /opt/rpdeploy/rpdeploy_runtime`` (the image).

Run as a folder, this file is a script with no package: it puts the folder's parent on
sys.path and imports the folder as a package, so the modules' relative imports work.
"""

import importlib
import os
import sys

if __package__:
    from .bootstrap import main
else:
    _here = os.path.dirname(os.path.abspath(__file__))
    sys.path[0] = os.path.dirname(_here)
    main = importlib.import_module(os.path.basename(_here) + ".bootstrap").main

sys.exit(main(sys.argv[1:]))
