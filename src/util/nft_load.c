/*
 * libnftables, loaded the first time it is used.  Linked directly, it and
 * what it pulls in (libnftnl, libxtables, libjansson, libgmp) were loaded
 * and relocated at every start of stasis, some 0.3 ms of a command that
 * takes a few ms for a small process, though only the network lock
 * (netlock.c) and network namespaces (ns_net.c) use it.  Its few entry
 * points that stasis calls are defined here with their own names and
 * signatures (<nftables/libnftables.h>), and forward to the library
 * opened with dlopen.  Without the library, nft_ctx_new fails with one
 * line saying why, where the caller already handles a failed context.
 */
#include <dlfcn.h>
#include <stdbool.h>
#include <stddef.h>
#include <nftables/libnftables.h>

#include "log.h"

#define NFT_LIB "libnftables.so.1"

static struct {
	void *lib;
	struct nft_ctx *(*ctx_new)(uint32_t flags);
	void (*ctx_free)(struct nft_ctx *ctx);
	void (*set_dry_run)(struct nft_ctx *ctx, bool dry);
	int (*buffer_output)(struct nft_ctx *ctx);
	const char *(*get_output_buffer)(struct nft_ctx *ctx);
	int (*buffer_error)(struct nft_ctx *ctx);
	const char *(*get_error_buffer)(struct nft_ctx *ctx);
	int (*run_cmd_from_buffer)(struct nft_ctx *nft, const char *buf);
} nft;

static bool nft_bind(void **fn, const char *name)
{
	*fn = dlsym(nft.lib, name);
	if (!*fn)
		pr_err("%s has no %s: %s\n", NFT_LIB, name, dlerror());
	return *fn != NULL;
}

static bool nft_load(void)
{
	if (nft.lib)
		return true;
	nft.lib = dlopen(NFT_LIB, RTLD_NOW | RTLD_LOCAL);
	if (!nft.lib) {
		pr_err("cannot load %s (needed for nftables): %s\n", NFT_LIB, dlerror());
		return false;
	}
	if (nft_bind((void **)&nft.ctx_new, "nft_ctx_new") &&
	    nft_bind((void **)&nft.ctx_free, "nft_ctx_free") &&
	    nft_bind((void **)&nft.set_dry_run, "nft_ctx_set_dry_run") &&
	    nft_bind((void **)&nft.buffer_output, "nft_ctx_buffer_output") &&
	    nft_bind((void **)&nft.get_output_buffer, "nft_ctx_get_output_buffer") &&
	    nft_bind((void **)&nft.buffer_error, "nft_ctx_buffer_error") &&
	    nft_bind((void **)&nft.get_error_buffer, "nft_ctx_get_error_buffer") &&
	    nft_bind((void **)&nft.run_cmd_from_buffer, "nft_run_cmd_from_buffer"))
		return true;
	dlclose(nft.lib);
	nft.lib = NULL;
	return false;
}

/* Every other entry point is only reached with a context from here. */
struct nft_ctx *nft_ctx_new(uint32_t flags)
{
	return nft_load() ? nft.ctx_new(flags) : NULL;
}

void nft_ctx_free(struct nft_ctx *ctx)
{
	nft.ctx_free(ctx);
}

void nft_ctx_set_dry_run(struct nft_ctx *ctx, bool dry)
{
	nft.set_dry_run(ctx, dry);
}

int nft_ctx_buffer_output(struct nft_ctx *ctx)
{
	return nft.buffer_output(ctx);
}

const char *nft_ctx_get_output_buffer(struct nft_ctx *ctx)
{
	return nft.get_output_buffer(ctx);
}

int nft_ctx_buffer_error(struct nft_ctx *ctx)
{
	return nft.buffer_error(ctx);
}

const char *nft_ctx_get_error_buffer(struct nft_ctx *ctx)
{
	return nft.get_error_buffer(ctx);
}

int nft_run_cmd_from_buffer(struct nft_ctx *ctx, const char *buf)
{
	return nft.run_cmd_from_buffer(ctx, buf);
}
