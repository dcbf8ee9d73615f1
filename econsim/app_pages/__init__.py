"""Pages of the Streamlit workbench (``streamlit run app.py``).

One small script per page (``builder.py``, ``what_if.py``, ``plots.py``, ``runs.py``,
``exports.py``, ``regression.py``), registered with ``st.navigation`` in ``app.py``; shared
helpers without page content in ``common.py`` and Altair charts in ``charts.py``. The
pages only call econsim (``scenario``, ``whatif``, ``runner``, ``store``, ``analysis``).
"""
