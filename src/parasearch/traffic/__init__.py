"""Traffic: request traces, arrival processes and the length distributions they imply."""
