# The programs. Filled in as the modules land.
