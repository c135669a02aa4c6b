"""The clinical life of one chunk of persons inside the data window, as columnar event tables.

Order of the model (each step vectorized over the chunk with numpy):
1. natural_history.prepare: onsets of chronic conditions and cancers, death, hospital events.
2. encounters.build: the encounters, their times, sites and claims; then fill.fill: what happened
   at each (visits.py by kind of encounter, problem_list.py, medications.py, observations.py).
timeline.py holds the types handed to the writers (Prepared, Timeline, Kind).
Nothing happens after death; a treatment never starts before its condition.
"""
