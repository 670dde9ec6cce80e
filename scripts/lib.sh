# Shared by scripts/app, scripts/test and .ci/run. Source it; it defines functions only.

# What the desktop build links against (Debian 12 / Ubuntu names).
BUILD_PACKAGES=(
  build-essential pkg-config file libssl-dev libdbus-1-dev
  libwebkit2gtk-4.1-dev libgtk-3-dev libayatana-appindicator3-dev librsvg2-dev libxdo-dev
)
# What the tests need on top: a headless X server, WebDriver for WebKitGTK, a D-Bus session
# and a real Secret Service (gnome-keyring) to keep keys in.
TEST_PACKAGES=(
  webkit2gtk-driver xvfb xauth dbus dbus-x11 gnome-keyring libsecret-tools keyutils
)

# ensure_packages PKG... : installs the missing ones when root, else prints the exact command.
ensure_packages() {
  if ! command -v dpkg >/dev/null 2>&1; then
    echo "note: not a Debian-like system; make sure these (or your distribution's equivalents) are installed: $*" >&2
    return 0
  fi
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -eq 0 ]; then
    echo "== installing system packages: ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  else
    echo "These system packages are missing. Install them with:" >&2
    echo "  sudo apt-get install --no-install-recommends ${missing[*]}" >&2
    exit 1
  fi
}

# ensure_ui_deps: runs `npm ci` in ui/ unless node_modules was installed from this exact lockfile.
ensure_ui_deps() {
  if ! command -v npm >/dev/null 2>&1; then
    echo "npm is missing: install Node.js 20.19 or newer (it includes npm)." >&2
    exit 1
  fi
  local stamp=ui/node_modules/.installed-from-package-lock.json
  if ! cmp -s ui/package-lock.json "$stamp"; then
    echo "== npm ci (ui/)"
    npm ci --prefix ui --no-audit --no-fund
    cp ui/package-lock.json "$stamp"
  fi
}
