"""Reports over run directories: the HTML report, run-to-run comparison, the matrix."""
