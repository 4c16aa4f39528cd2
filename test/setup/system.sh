#!/usr/bin/env bash
# `npm test`'s own set-up: the system packages the test run needs besides Node (real peers on
# loopback: headless Chromium for the preview, librdkafka's mock Kafka cluster built with a C
# compiler, a real Apache Kafka broker (Java 17 and Maven: its jars come from Maven), openssl for
# test certificates, SpamAssassin to score the built-in emails, redis-server for the shared
# idempotency store, msmtp as a real sendmail-compatible binary, PostgreSQL for the suppression
# store, dkimpy as a second DKIM verifier, Postfix as a real MTA to relay SMTP through), then the
# npm packages from the lock file.
# Installs what is missing with apt-get where it can (as root, or with sudo that needs no
# password); otherwise stops at once and prints the one command to run. Never skips a suite.
# `--npm-only` (npm run demo, npm run preview) installs only the npm packages.
set -euo pipefail
cd "$(dirname "$0")/../.."

missing=()
have() { command -v "$1" >/dev/null 2>&1; }
if [ "${1:-}" != --npm-only ]; then
have openssl || missing+=(openssl)
if [ -z "${CHROMIUM_PATH:-}" ] && ! have chromium; then missing+=(chromium); fi
[ -f /usr/include/librdkafka/rdkafka_mock.h ] || missing+=(librdkafka-dev)
have cc || missing+=(gcc libc6-dev)
have spamassassin || missing+=(spamassassin)
have java || missing+=(default-jre-headless)
have mvn || missing+=(maven)
have redis-server || missing+=(redis-server)
# msmtp in sendmail mode is the real binary the sendmail transport's contract suite runs through.
have msmtp || missing+=(msmtp)
# Debian's PostgreSQL server for the suppression store's tests (test/helpers/postgres-server.ts).
compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null || missing+=(postgresql)
# Postfix, the real MTA the SMTP transport's mail is relayed through (test/helpers/postfix-server.ts).
[ -x /usr/sbin/postfix ] || missing+=(postfix)
# The libraries @confluentinc/kafka-javascript's bundled librdkafka links against when it is built
# with CKJS_LINKING=dynamic (below): its default build downloads them instead, which fails offline.
header() { compgen -G "/usr/include/$1" >/dev/null || compgen -G "/usr/include/*/$1" >/dev/null; }
header openssl/ssl.h || missing+=(libssl-dev)
header zlib.h || missing+=(zlib1g-dev)
header zstd.h || missing+=(libzstd-dev)
header lz4.h || missing+=(liblz4-dev)
header sasl/sasl.h || missing+=(libsasl2-dev)
header curl/curl.h || missing+=(libcurl4-openssl-dev)
have g++ || missing+=(g++)
have make || missing+=(make)

if [ ${#missing[@]} -gt 0 ]; then
  if ! have apt-get; then
    echo "npm test needs these (Debian/Ubuntu package names): ${missing[*]}." >&2
    echo "Install them with your system's package manager, then run npm test again." >&2
    exit 1
  fi
  # Postfix's "No configuration": installing it never prompts and sets up no system mail server
  # (the tests run private instances of their own; in a container its service start is refused).
  postfix_preseed='postfix postfix/main_mailer_type select No configuration'
  needs_postfix=false
  [[ " ${missing[*]} " == *" postfix "* ]] && needs_postfix=true
  if [ "$(id -u)" = 0 ]; then
    as_root=()
  elif have sudo && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
  else
    echo "npm test needs system packages that are not installed: ${missing[*]}. Run:" >&2
    if $needs_postfix; then echo "  echo '$postfix_preseed' | sudo debconf-set-selections" >&2; fi
    echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  echo "test set-up: installing ${missing[*]} with apt-get"
  if $needs_postfix; then echo "$postfix_preseed" | "${as_root[@]}" debconf-set-selections; fi
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# dkimpy: the second, independent DKIM verifier the signing tests check against (besides mailauth).
python=${PYTHON:-python3}
if ! "$python" -c 'import dkim' 2>/dev/null; then
  if ! have "$python"; then
    echo "npm test needs Python 3 with dkimpy. Run: sudo apt-get install -y python3-dkim" >&2
    exit 1
  fi
  echo "test set-up: installing dkimpy with pip"
  "$python" -m pip install --quiet --disable-pip-version-check dkimpy==1.1.8 ||
    "$python" -m pip install --quiet --disable-pip-version-check --user dkimpy==1.1.8 || {
    echo "npm test needs dkimpy for $python. Run: $python -m pip install dkimpy==1.1.8" >&2
    exit 1
  }
fi

# Apache Kafka's broker for the real-broker tests (test/helpers/kafka-real.ts): its runtime jars,
# copied by Maven into test/setup/kafka/libs (git-ignored), again only when the pom changed.
kafka_dir=test/setup/kafka
kafka_pom_hash=$(sha256sum "$kafka_dir/pom.xml" | cut -c1-16)
if [ "$(cat "$kafka_dir/libs/.pom-hash" 2>/dev/null)" != "$kafka_pom_hash" ]; then
  echo "test set-up: resolving Apache Kafka's broker jars with Maven"
  rm -rf "$kafka_dir/libs"
  mvn_log=$(mktemp)
  if ! mvn -B -Dstyle.color=never -f "$kafka_dir/pom.xml" dependency:copy-dependencies >"$mvn_log" 2>&1; then
    tail -n 40 "$mvn_log" >&2
    rm -rf "$kafka_dir/libs" "$mvn_log"
    echo "npm test could not resolve the Kafka broker's jars (needs Maven Central). Run:" >&2
    echo "  mvn -B -f $kafka_dir/pom.xml dependency:copy-dependencies" >&2
    exit 1
  fi
  bindings=$(find "$kafka_dir/libs" -name 'slf4j-reload4j-*.jar' -o -name 'slf4j-log4j12-*.jar' -o -name 'logback-classic-*.jar' | wc -l)
  if [ "$bindings" != 1 ]; then
    echo "test set-up: expected one SLF4J binding in $kafka_dir/libs, found $bindings: check the pom's exclusions" >&2
    exit 1
  fi
  rm -f "$mvn_log"
  echo "$kafka_pom_hash" >"$kafka_dir/libs/.pom-hash"
fi
fi

# npm packages: installed from the lock file when node_modules is missing or older than the lock.
# A node_modules that is a symlink (a git worktree sharing another checkout's) is that checkout's
# to install: npm ci would empty the folder it points to.
if [ -L node_modules ]; then
  :
elif [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "test set-up: installing npm packages from package-lock.json"
  npm ci --no-audit --no-fund
fi

# @confluentinc/kafka-javascript, the second Kafka client every worker and producer scenario runs
# on: package.json's allowScripts keeps npm from running its install step (which would try to
# download a prebuilt binary, then librdkafka's own dependencies); it is built here instead,
# against the system's libraries, once per node_modules.
ckjs=node_modules/@confluentinc/kafka-javascript
if [ "${1:-}" != --npm-only ] && [ ! -L node_modules ] && [ ! -f "$ckjs/build/Release/confluent-kafka-javascript.node" ]; then
  echo "test set-up: building @confluentinc/kafka-javascript against the system's libraries (CKJS_LINKING=dynamic, 1-2 minutes)"
  ckjs_log=$(mktemp)
  if ! (cd "$ckjs" && CKJS_LINKING=dynamic npm run install -- --build-from-source) >"$ckjs_log" 2>&1; then
    tail -n 40 "$ckjs_log" >&2
    rm -f "$ckjs_log"
    echo "npm test could not build @confluentinc/kafka-javascript. Run:" >&2
    echo "  (cd $ckjs && CKJS_LINKING=dynamic npm run install -- --build-from-source)" >&2
    exit 1
  fi
  rm -f "$ckjs_log"
fi
