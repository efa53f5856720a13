"""Datasets for analysts, streamed in every format: the responses (responses.py), the shown images,
units and sessions (tables.py), the formats (formats.py), the dataset bundle (bundle.py) and reading a
bundle back into a study (reimport.py). Never the raw participant id, only the pseudonym."""
