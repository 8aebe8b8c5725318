"""The learning service: courses and their recertification-unit value, enrollments, completions, exams
(pass mark 76%).

Its rules live in `domain.py`.
"""
