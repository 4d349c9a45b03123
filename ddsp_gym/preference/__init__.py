"""People in the loop: learn a listener's taste from A/B votes and search for their patch.

``search`` picks the pairs to compare and the best patch so far from the votes; the web
app (``ddsp-gym prefer``) asks a person, ``rater`` simulates one for tests and benchmarks,
and ``reward`` turns a learned preference model into an env's reward source.
"""
