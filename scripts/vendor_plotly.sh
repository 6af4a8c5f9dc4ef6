#!/usr/bin/env bash
# Fetch the plotly.js "cartesian" bundle (scatter, heatmap, histogram, bar, image …; 1.5 MB instead of 4.8 MB) into
# assets/vendor/, at the plotly.js version that the pinned Python plotly package writes figures for.
# The page loads it once; app/live_plot.py updates figures in place with Plotly.react.
set -euo pipefail
cd "$(dirname "$0")/.."
version="$(python3 -c 'from plotly.offline import get_plotlyjs_version; print(get_plotlyjs_version())')"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "plotly.js-cartesian-dist-min@$version" >/dev/null && tar xzf ./*.tgz)
mkdir -p assets/vendor
cp "$work/package/plotly-cartesian.min.js" assets/vendor/plotly-cartesian.min.js
cp "$work/package/LICENSE" assets/vendor/plotly-LICENSE.txt
echo "assets/vendor/plotly-cartesian.min.js: plotly.js $version"
