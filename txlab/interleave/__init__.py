"""Step-by-step interleavings: PostgreSQL isolation-tester specs, run and rendered.

spec (parse, validate, permutations) -> driver (one thread per session, a control
connection for lock waits) -> events -> transcript | pretty | json.
"""
