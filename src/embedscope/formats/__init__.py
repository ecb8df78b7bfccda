"""Formats: other tools' files. MiLoPYP's npz and Parquet, RELION STAR, vectors in npy/npz/pt/Parquet/CSV/HDF5,
images and MRC, and writing any file atomically; they know nothing of Atlases, the CLI or the server.

Import from the module of the format (`embedscope.formats.star`, ...): each pulls in only its own readers.
"""
