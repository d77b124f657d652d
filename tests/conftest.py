import os
import sys

# The fake network lives next to the tests and is imported by name.
sys.path.insert(0, os.path.dirname(__file__))
