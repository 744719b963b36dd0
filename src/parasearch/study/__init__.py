"""Characterization studies: the oracle swept over models x strategies x workloads."""
