"""The prompt-file generator behind ``utilities.csv_generator``, one module per concept."""
