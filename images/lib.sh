# Shared by images/build.sh and images/executor.sh (sourced from the repository root).

now_ms() { date +%s%3N; }

# Python packages for an image are installed on the host (pip install --target, for the
# base's Python 3.11) and copied in: no pip and no registry are needed in the image.
# site_packages ARGS...: a cached folder of those packages (the same ARGS reuse it).
site_packages() {
  local site; site=.cache/site-$(printf '%s' "$*" | sha256sum | cut -c1-12)
  if [ ! -f "$site/.done" ]; then
    rm -rf "$site"
    "${PYTHON_HOST:-python3}" -m pip install -q --no-compile --target "$site" \
      --python-version 3.11 --only-binary=:all: "$@" >&2
    touch "$site/.done"
  fi
  echo "$site"
}
