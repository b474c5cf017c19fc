"""Payer documentation packets: results -> one packet per course -> PDF/A-3 + index.csv."""
