"""Files `driftmon demo` copies into its working folder: config, probe set and scenario.

They are plain files rather than strings in code so a user can read, edit and reuse them.
"""
