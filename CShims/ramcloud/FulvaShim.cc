/* Copyright (c) 2026 Fulva authors.
 *
 * The client shim's C++ half (see FulvaShim.h): loads the plugin's
 * fulva_shim_* exports once per process, gives each connection a shim with
 * host operations over that connection, and moves bytes between RAMCloud's
 * read replies and the shim. Compiled into libramcloud and the server,
 * which share the client code that calls it; only connections opened by a
 * process that can load the plugin ever get a shim.
 */

#include <dlfcn.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <vector>

#include "ClientException.h"
#include "Key.h"
#include "ObjectFinder.h"
#include "RamCloud.h"
#include "ShortMacros.h"
#include "WireFormat.h"
#include "fulva/FulvaClient.h"
#include "fulva/FulvaDirect.h"
#include "fulva/FulvaShim.h"

namespace RAMCloud {
namespace {

/// The plugin's shim exports, resolved once per process.
struct ShimLibrary {
    bool loaded;
    int (*start)(const fulva_shim_host_ops*, void**);
    int (*learn)(void*, const uint8_t*, uint32_t);
    int (*route)(void*, uint64_t, uint64_t, uint64_t*, uint64_t*);
    int (*execute)(void*, const fulva_client_operation*,
                   fulva_client_outcome*, uint32_t);
    uint32_t (*migrations)(void*);
    int (*counters)(void*, struct fulva_shim_counters*);
    void (*stop)(void*);
};

ShimLibrary library = {};
std::once_flag libraryOnce;

template<typename Function>
bool
resolve(void* handle, const char* name, Function* slot)
{
    *slot = reinterpret_cast<Function>(dlsym(handle, name));
    return *slot != NULL;
}

/**
 * Loads the plugin named by FULVA_PLUGIN ("" or "none": no shim), or the
 * default install path when that exists. A program that already runs a
 * Swift runtime (a Swift program using libramcloud) gets no shim: two
 * Swift runtimes must not share a process, and such programs use
 * FulvaClient's ProtocolClient, the same rules, directly.
 */
void
loadLibrary()
{
    const char* path = getenv("FULVA_PLUGIN");
    string fallback;
    if (path == NULL) {
        const char* home = getenv("HOME");
        if (home == NULL)
            return;
        fallback = string(home) + "/.cache/fulva/plugin/libFulvaPlugin.so";
        if (access(fallback.c_str(), R_OK) != 0)
            return;
        path = fallback.c_str();
    }
    if (path[0] == '\0' || strcmp(path, "none") == 0)
        return;
    if (dlsym(RTLD_DEFAULT, "swift_retain") != NULL) {
        LOG(NOTICE, "Fulva: no client shim in a Swift program (it uses "
            "FulvaClient's ProtocolClient instead)");
        return;
    }
    void* handle = dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (handle == NULL) {
        LOG(WARNING, "Fulva: client shim not loaded: %s", dlerror());
        return;
    }
    uint32_t (*abiVersion)() = NULL;
    if (!resolve(handle, "fulva_shim_abi_version", &abiVersion) ||
            abiVersion() != FULVA_ABI_VERSION) {
        LOG(WARNING, "Fulva: client shim not loaded: %s has ABI version %u, "
            "this libramcloud needs %u", path,
            abiVersion == NULL ? 0 : abiVersion(), FULVA_ABI_VERSION);
        return;
    }
    if (!resolve(handle, "fulva_shim_start", &library.start) ||
            !resolve(handle, "fulva_shim_learn", &library.learn) ||
            !resolve(handle, "fulva_shim_route", &library.route) ||
            !resolve(handle, "fulva_shim_execute", &library.execute) ||
            !resolve(handle, "fulva_shim_migrations", &library.migrations) ||
            !resolve(handle, "fulva_shim_get_counters", &library.counters) ||
            !resolve(handle, "fulva_shim_stop", &library.stop)) {
        LOG(WARNING, "Fulva: client shim not loaded: %s lacks fulva_shim_*",
            path);
        return;
    }
    library.loaded = true;
}

/// The key of a READ request (after its header).
const void*
requestKey(Buffer* request)
{
    const WireFormat::Read::Request* reqHdr =
            request->getStart<WireFormat::Read::Request>();
    return reqHdr == NULL ? NULL
            : request->getRange(sizeof32(*reqHdr), reqHdr->keyLength);
}

uint16_t
requestKeyLength(Buffer* request)
{
    const WireFormat::Read::Request* reqHdr =
            request->getStart<WireFormat::Read::Request>();
    return reqHdr == NULL ? 0 : reqHdr->keyLength;
}

/// RAMCloud's RejectRules as fulva.h carries them; returns whether any
/// rule is set.
bool
convert(const RejectRules& rules, fulva_reject_rules* out)
{
    memset(out, 0, sizeof(*out));
    out->givenVersion = rules.givenVersion;
    out->doesntExist = rules.doesntExist;
    out->exists = rules.exists;
    out->versionLeGiven = rules.versionLeGiven;
    out->versionNeGiven = rules.versionNeGiven;
    return rules.doesntExist || rules.exists || rules.versionLeGiven ||
            rules.versionNeGiven;
}

} // namespace

FulvaShim::FulvaShim(RamCloud* ramcloud, void* handle)
    : ramcloud(ramcloud)
    , handle(handle)
    , knownMigrations(0)
    , pluginCalls(0)
    , routedRequests(0)
    , value()
    , locators()
    , ops()
{
}

void
FulvaShim::refresh()
{
    pluginCalls++;
    knownMigrations = library.migrations(handle);
}

FulvaShim::~FulvaShim()
{
    if (handle != NULL)
        library.stop(handle);
}

FulvaShim*
FulvaShim::open(RamCloud* ramcloud)
{
    std::call_once(libraryOnce, loadLibrary);
    if (ramcloud->clientContext->fulvaShim != NULL)
        return NULL;    // another connection on this context has one
    FulvaShim* shim = new FulvaShim(ramcloud, NULL);
    ramcloud->clientContext->fulvaShim = shim;
    if (!library.loaded)
        return shim;
    shim->ops.structSize = sizeof32(shim->ops);
    shim->ops.abiVersion = FULVA_ABI_VERSION;
    shim->ops.context = shim;
    shim->ops.execute = &FulvaShim::opExecute;
    shim->ops.tablet_owner = &FulvaShim::opTabletOwner;
    shim->ops.key_hash = &fulva_key_hash;
    if (library.start(&shim->ops, &shim->handle) != FULVA_OK) {
        LOG(WARNING, "Fulva: the client shim refused to start");
        shim->handle = NULL;
    }
    return shim;
}

void
FulvaShim::close(RamCloud* ramcloud, FulvaShim* shim)
{
    if (shim == NULL)
        return;
    if (ramcloud->clientContext->fulvaShim == shim)
        ramcloud->clientContext->fulvaShim = NULL;
    struct fulva_shim_counters c;
    if (shim->counters(&c)) {
        char line[360];
        snprintf(line, sizeof(line), "Fulva: client shim: %lu reads (%lu "
                 "dual reads), %lu requests routed to a destination, %lu "
                 "request rounds, %lu tag bytes, %lu migrations learned, %lu "
                 "failed, %lu calls into the plugin", c.reads, c.dualReads,
                 shim->routedRequests, c.rounds, c.tagBytes,
                 c.migrationsLearned, c.failed, shim->pluginCalls);
        if (shim->pluginCalls > 0)
            LOG(NOTICE, "%s", line);
        // Clients log only warnings by default: FULVA_SHIM_COUNTERS names
        // a file that collects the line (one per connection with a shim,
        // busy or not).
        const char* path = getenv("FULVA_SHIM_COUNTERS");
        if (path != NULL && path[0] != '\0') {
            FILE* file = fopen(path, "a");
            if (file != NULL) {
                fprintf(file, "%s\n", line);
                fclose(file);
            }
        }
    }
    delete shim;
}

int
FulvaShim::opExecute(void* context, const fulva_client_operation* operations,
                     fulva_client_outcome* outcomes, size_t count,
                     uint32_t timeoutMicros, char* error, size_t errorLength)
{
    FulvaShim* shim = static_cast<FulvaShim*>(context);
    try {
        return FulvaDirect::execute(*shim->ramcloud, operations, outcomes,
                                    count, timeoutMicros);
    } catch (ClientException& e) {
        FulvaClient::report(error, errorLength, e.str());
        return static_cast<int>(e.status);
    } catch (Exception& e) {
        FulvaClient::report(error, errorLength, e.str());
        return FULVA_ERROR_UNAVAILABLE;
    }
}

int
FulvaShim::opTabletOwner(void* context, uint64_t tableId, const void* key,
                         uint16_t keyLength, int fresh, uint64_t* serverId)
{
    FulvaShim* shim = static_cast<FulvaShim*>(context);
    try {
        ObjectFinder* finder = shim->ramcloud->clientContext->objectFinder;
        if (fresh)
            finder->flush(tableId);
        *serverId = finder->lookupTablet(tableId,
                Key::getHash(tableId, key, keyLength))->tablet.serverId
                .getId();
        return FULVA_OK;
    } catch (ClientException& e) {
        return static_cast<int>(e.status);
    } catch (Exception& e) {
        return FULVA_ERROR_UNAVAILABLE;
    }
}

void
FulvaShim::finishRead(Context* context, uint64_t tableId, Buffer* request,
                      Buffer* response)
{
    const WireFormat::Read::Response* respHdr =
            response->getStart<WireFormat::Read::Response>();
    if (respHdr == NULL)
        return;
    uint32_t used = sizeof32(*respHdr) +
            (respHdr->common.status == STATUS_OK ? respHdr->length : 0);
    if (response->size() <= used) {
        // No tag: the server holds the tablet normally. A migration the
        // shim still believes in (the read went to its destination) is
        // over; it tells the shim so, and requests stop being routed.
        FulvaShim* shim = context->fulvaShim;
        uint64_t server, migration;
        if (shim != NULL && shim->knownMigrations != 0 &&
                requestKey(request) != NULL &&
                (respHdr->common.status == STATUS_OK ||
                 respHdr->common.status == STATUS_OBJECT_DOESNT_EXIST) &&
                ++shim->pluginCalls &&
                library.route(shim->handle, tableId,
                              Key::getHash(tableId, requestKey(request),
                                           requestKeyLength(request)),
                              &server, &migration) != 0) {
            uint8_t ended[16] = {};
            ended[0] = 3;   // MigrationRole.ended
            memcpy(&ended[1], &migration, sizeof(migration));
            shim->pluginCalls++;
            library.learn(shim->handle, ended, sizeof(ended));
            shim->refresh();
        }
        return;
    }
    // A tag follows: the read was about a migrating tablet.
    uint32_t tagLength = response->size() - used;
    std::vector<uint8_t> tag(tagLength);
    response->copy(used, tagLength, tag.data());
    response->truncate(used);
    FulvaShim* shim = context->fulvaShim;
    if (shim == NULL || shim->handle == NULL)
        return;
    shim->pluginCalls++;
    int mustDecide = library.learn(shim->handle, tag.data(), tagLength);
    shim->refresh();
    if (mustDecide == 0)
        return;     // the destination's answer stands on its own

    // A source's frozen copy: the client rules decide the read.
    shim->decideRead(tableId, request, response);
}

/// Whether the key belongs to a migration the shim knows, and its
/// destination. Asks the plugin only while it knows some migration.
bool
FulvaShim::destinationOf(FulvaShim* shim, uint64_t tableId, uint64_t keyHash,
                         uint64_t* server)
{
    if (shim == NULL || shim->knownMigrations == 0)
        return false;
    shim->pluginCalls++;
    uint64_t migration;
    return library.route(shim->handle, tableId, keyHash, server,
                         &migration) != 0;
}

bool
FulvaShim::readNow(Context* context, uint64_t tableId, uint64_t keyHash,
                   Buffer* request, Buffer* response)
{
    FulvaShim* shim = context->fulvaShim;
    uint64_t server;
    if (!destinationOf(shim, tableId, keyHash, &server))
        return false;
    shim->decideRead(tableId, request, response);
    return true;
}

void
FulvaShim::decideRead(uint64_t tableId, Buffer* request, Buffer* response)
{
    const WireFormat::Read::Request* reqHdr =
            request->getStart<WireFormat::Read::Request>();
    if (reqHdr == NULL)
        return;
    const void* key = request->getRange(sizeof32(*reqHdr),
                                        reqHdr->keyLength);
    if (key == NULL)
        return;
    fulva_reject_rules rules;
    bool anyRule = convert(reqHdr->rejectRules, &rules);
    fulva_client_operation operation = {};
    operation.tableId = tableId;
    operation.key = key;
    operation.keyLength = reqHdr->keyLength;
    operation.kind = FULVA_OPERATION_READ;
    operation.rejectRules = anyRule ? &rules : NULL;
    if (value.empty())
        value.resize(1u << 20);
    operation.valueBuffer = value.data();
    operation.valueCapacity = downCast<uint32_t>(value.size());
    fulva_client_outcome outcome;
    Status status = STATUS_INTERNAL_ERROR;
    pluginCalls++;
    int executed = library.execute(handle, &operation, &outcome,
                                   10 * 1000 * 1000);
    refresh();
    if (executed == FULVA_OK) {
        if (outcome.status == STATUS_OK)
            status = outcome.answer == FULVA_ANSWER_OBJECT
                    ? STATUS_OK : STATUS_OBJECT_DOESNT_EXIST;
        else if (outcome.status != FULVA_ERROR_UNAVAILABLE)
            status = static_cast<Status>(outcome.status);
    }
    response->reset();
    WireFormat::Read::Response* rewritten =
            response->emplaceAppend<WireFormat::Read::Response>();
    memset(rewritten, 0, sizeof(*rewritten));
    rewritten->common.status = status;
    if (status == STATUS_OK) {
        rewritten->version = outcome.version;
        rewritten->length = std::min(outcome.valueLength,
                                     operation.valueCapacity);
        response->appendCopy(value.data(), rewritten->length);
    }
}

Transport::SessionRef
FulvaShim::route(Context* context, uint64_t tableId, uint64_t keyHash)
{
    FulvaShim* shim = context->fulvaShim;
    uint64_t server;
    if (!destinationOf(shim, tableId, keyHash, &server))
        return Transport::SessionRef();
    shim->routedRequests++;
    return FulvaDirect::session(context, server);
}

bool
FulvaShim::counters(struct fulva_shim_counters* out)
{
    return handle != NULL && library.counters(handle, out) == FULVA_OK;
}

} // namespace RAMCloud


extern "C" int
fulva_client_shim_counters(struct rc_client* client,
                           struct fulva_shim_counters* counters, int* loaded)
{
    if (client == NULL || counters == NULL || loaded == NULL)
        return FULVA_ERROR_INVALID_ARGUMENT;
    memset(counters, 0, sizeof(*counters));
    RAMCloud::FulvaShim* shim = RAMCloud::FulvaClient::ramcloudOf(client)
            ->clientContext->fulvaShim;
    *loaded = shim != NULL && shim->hasShim();
    if (*loaded && !shim->counters(counters))
        return FULVA_ERROR_INTERNAL;
    return FULVA_OK;
}
