"""Published datasets read into studies, so that the platform's analysis runs on them: Borowski et al.
2021's released CSVs (borowski2021.py) and the IMI responses layout (imi.py). Each reader turns its
files into one table of trials in the layout writer.py documents, and writer.py stores it."""
