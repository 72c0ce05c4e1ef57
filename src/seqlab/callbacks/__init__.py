"""Lightning callbacks that every seqlab run uses."""
