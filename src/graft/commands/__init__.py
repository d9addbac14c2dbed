"""What the ``graft`` commands do, as library functions: the CLI parses arguments, calls one of these and prints."""
