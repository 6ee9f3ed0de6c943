"""The HTML report: `data` reads what to show, `charts` draws SVG, `render` writes the file.

Nothing is imported here, so importing a submodule stays cheap until a report is built.
"""
