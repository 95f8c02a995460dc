"""The command line: parse, call the library, render results. No SQL, no drivers here."""
