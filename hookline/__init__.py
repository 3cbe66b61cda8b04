"""Hookline: shared configuration, records and command-line tools."""
