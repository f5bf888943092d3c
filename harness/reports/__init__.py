"""Reports over run directories: the HTML report, run-to-run comparison, the matrix's page.

They read what runs wrote and run nothing themselves (the matrix that runs benches is
``harness.matrix``)."""
