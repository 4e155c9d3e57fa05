"""`python -m feeds.sim ...` == `tickring sim ...` (what start_in_background launches)."""
from tools.sim import command

command(prog_name="python -m feeds.sim")
