"""The econsim workbench: ``streamlit run app.py`` (or ``make app``).

Pages (``econsim/app_pages/``): start (what econsim is, a walkthrough, a glossary), scenario
builder, what-if, plots, experiment (a grid of parameter values x seeds), runs browser,
exports, regression. The sidebar shows the runs
folder (``$ECONSIM_RUNS`` when the app was started, else ``runs``), where runs are stored
and read; it cannot be changed from the browser. The app only calls econsim; it
re-implements none of it.
"""

import warnings

import streamlit as st

from econsim.app_pages import common
from econsim.errors import StoreWarning

# a folder the store skips is shown on the pages that list runs (common.list_runs)
warnings.filterwarnings("ignore", category=StoreWarning)

st.set_page_config(page_title="econsim workbench", page_icon=":material/monitoring:", layout="wide")

# read-only: whoever can reach the app must not make it train into (or read from) any
# folder the server can write; the runs folder is chosen when the app is started
st.sidebar.text_input(
    "Runs folder", value=str(common.runs_root()), disabled=True,
    help="Folder holding one sub-folder per training run: $ECONSIM_RUNS when the app was "
         "started, else ./runs (to use another, restart the app with ECONSIM_RUNS set). "
         "Training from the builder writes here; the runs browser, exports and regressions "
         "read from here.")

PAGES = "econsim/app_pages"
nav = st.navigation([
    st.Page(f"{PAGES}/home.py", title="Start", url_path="start", default=True),
    st.Page(f"{PAGES}/builder.py", title="Scenario builder", url_path="builder"),
    st.Page(f"{PAGES}/what_if.py", title="What-if", url_path="what-if"),
    st.Page(f"{PAGES}/plots.py", title="Plots", url_path="plots"),
    st.Page(f"{PAGES}/experiment.py", title="Experiment", url_path="experiment"),
    st.Page(f"{PAGES}/runs.py", title="Runs", url_path="runs"),
    st.Page(f"{PAGES}/exports.py", title="Exports", url_path="exports"),
    st.Page(f"{PAGES}/regression.py", title="Regression", url_path="regression"),
])
nav.run()
