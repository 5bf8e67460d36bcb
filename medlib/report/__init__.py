"""Reporting: the papers' reported numbers (``reported``), tables of ours beside them (``tables``,
``tables_measured``), figures from results (``figures``, ``viz``), the results check and
comparison (``check``, ``compare``)."""
