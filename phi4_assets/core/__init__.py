"""What every stage uses: content-hash ids, text normalisation, the refusal and decline detectors,
the one DuckDB connect-with-retry helper, thread settings, metadata tables, and the warehouse
(declared table schemas and the DuckDB IO manager)."""
