################################################################################
#
# keepalived-rs
#
################################################################################

# Default: build the checkout this BR2_EXTERNAL lives in (board/buildroot is
# two levels below the crate root). To build a release from git instead:
#   KEEPALIVED_RS_VERSION = v0.1.0   (tag or commit)
#   KEEPALIVED_RS_SITE = https://github.com/keepalived-rs/keepalived-rs.git
#   KEEPALIVED_RS_SITE_METHOD = git
# (and add a keepalived-rs.hash once the tarball is fixed). A developer can
# also keep this file and set KEEPALIVED_RS_OVERRIDE_SRCDIR in local.mk.
KEEPALIVED_RS_SITE ?= $(BR2_EXTERNAL_KEEPALIVED_RS_PATH)/../..
KEEPALIVED_RS_SITE_METHOD ?= local
KEEPALIVED_RS_LICENSE = MIT or Apache-2.0
KEEPALIVED_RS_LICENSE_FILES = LICENSE-MIT LICENSE-APACHE

KEEPALIVED_RS_PROFILE_DIR = $(if $(BR2_ENABLE_DEBUG),debug,release)
KEEPALIVED_RS_BIN = $(@D)/target/$(RUSTC_TARGET_NAME)/$(KEEPALIVED_RS_PROFILE_DIR)/keepalived

# Never copy a developer's build output into the Buildroot build (a host
# build's artefacts would be reused for the target).
KEEPALIVED_RS_OVERRIDE_SRCDIR_RSYNC_EXCLUSIONS = \
	--exclude /target --exclude '/target-*' --exclude /tests/fuzz/target

# A local tree: the `local` site method or an OVERRIDE_SRCDIR from local.mk.
KEEPALIVED_RS_LOCAL_TREE = \
	$(or $(KEEPALIVED_RS_OVERRIDE_SRCDIR),$(if $(filter local,$(KEEPALIVED_RS_SITE_METHOD)),$(KEEPALIVED_RS_SITE)))

ifneq ($(KEEPALIVED_RS_LOCAL_TREE),)
# Buildroot rsyncs a local tree without .git, so build.rs cannot see the
# commit: pass it in. (Empty if the tree is not a git checkout.)
KEEPALIVED_RS_CARGO_ENV += \
	KEEPALIVED_RS_GIT_COMMIT=$(shell git -C $(KEEPALIVED_RS_LOCAL_TREE) rev-parse --short HEAD 2>/dev/null)

# Crates are vendored into the download tarball only for downloaded sites.
# For a local tree, fill Buildroot's cargo cache first so that the
# `cargo build --offline` of pkg-cargo.mk finds them (needs network once).
define KEEPALIVED_RS_FETCH_CRATES
	cd $(@D) && $(PKG_CARGO_ENV) cargo fetch --locked
endef
KEEPALIVED_RS_PRE_BUILD_HOOKS += KEEPALIVED_RS_FETCH_CRATES
endif

# cargo-package's default install is `cargo install` into /usr/bin; keepalived
# belongs in /usr/sbin, with genhash as a symlink (argv[0] dispatch).
define KEEPALIVED_RS_INSTALL_TARGET_CMDS
	$(INSTALL) -D -m 0755 $(KEEPALIVED_RS_BIN) $(TARGET_DIR)/usr/sbin/keepalived
	mkdir -p $(TARGET_DIR)/usr/bin
	ln -sf ../sbin/keepalived $(TARGET_DIR)/usr/bin/genhash
	$(INSTALL) -D -m 0644 $(@D)/board/keepalived.conf \
		$(TARGET_DIR)/etc/keepalived/keepalived.conf
endef

define KEEPALIVED_RS_INSTALL_INIT_SYSV
	$(INSTALL) -D -m 0755 $(KEEPALIVED_RS_PKGDIR)/S30keepalived \
		$(TARGET_DIR)/etc/init.d/S30keepalived
endef

$(eval $(cargo-package))
