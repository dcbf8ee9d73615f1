"""The econsim workbench: ``streamlit run app.py`` (or ``make app``).

Pages (``econsim/app_pages/``): scenario builder, what-if, plots, runs browser, exports,
regression. The sidebar's "Runs folder" (default ``runs``, or ``$ECONSIM_RUNS``) is where
runs are stored and read. The app only calls econsim; it re-implements none of it.
"""

import warnings

import streamlit as st

from econsim.app_pages import common
from econsim.errors import StoreWarning

# a folder the store skips is shown on the pages that list runs (common.list_runs)
warnings.filterwarnings("ignore", category=StoreWarning)

st.set_page_config(page_title="econsim workbench", page_icon=":material/monitoring:", layout="wide")

if common.ROOT_KEY not in st.session_state:
    st.session_state[common.ROOT_KEY] = common.default_root()
st.sidebar.text_input(
    "Runs folder", key=common.ROOT_KEY,
    help="Folder holding one sub-folder per training run (set ECONSIM_RUNS to change the "
         "default). Training from the builder writes here; the runs browser, exports and "
         "regressions read from here.")

PAGES = "econsim/app_pages"
nav = st.navigation([
    st.Page(f"{PAGES}/builder.py", title="Scenario builder", url_path="builder",
            default=True),
    st.Page(f"{PAGES}/what_if.py", title="What-if", url_path="what-if"),
    st.Page(f"{PAGES}/plots.py", title="Plots", url_path="plots"),
    st.Page(f"{PAGES}/runs.py", title="Runs", url_path="runs"),
    st.Page(f"{PAGES}/exports.py", title="Exports", url_path="exports"),
    st.Page(f"{PAGES}/regression.py", title="Regression", url_path="regression"),
])
nav.run()
