"""``python -m zcbench.report`` = ``python -m zcbench report``."""
import sys

from zcbench.report.cli import main_report

sys.exit(main_report())
