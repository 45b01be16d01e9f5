"""Auditors' tools: verification of the evidence against the ledger."""
