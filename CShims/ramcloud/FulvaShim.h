/* Copyright (c) 2026 Fulva authors.
 *
 * FulvaShim: the client side of Fulva in libramcloud, one per RamCloud
 * connection: the locators of the cluster's servers by id, and the
 * plugin's client shim when the plugin can be loaded (FULVA_PLUGIN, or
 * ~/.cache/fulva/plugin/libFulvaPlugin.so). With the shim, the plugin's
 * client rules (Swift, FulvaCore) decide every read of a migration it
 * knows and every read a migration's source answered, and requests for a
 * migrating tablet go to its destination. While it knows no migration,
 * the hooks in RAMCloud's code cost a pointer and a counter test.
 */
#ifndef RAMCLOUD_FULVASHIM_H
#define RAMCLOUD_FULVASHIM_H

#include <vector>

#include "Buffer.h"
#include "Context.h"
#include "Transport.h"
#include "fulva/FulvaDirect.h"
#include "fulva/fulva.h"

namespace RAMCloud {

class RamCloud;

class FulvaShim {
  public:
    /// The state of a new connection; it has a shim when the plugin loads.
    static FulvaShim* open(RamCloud* ramcloud);
    static void close(RamCloud* ramcloud, FulvaShim* shim);

    /// ReadRpc::wait, once the reply is in: strips the migration tag a
    /// reply about a migrating tablet carries after its value and, when
    /// the reply came from a source's frozen copy, replaces it with the
    /// answer the client rules give.
    static void finishRead(Context* context, uint64_t tableId,
                           Buffer* request, Buffer* response);

    /// ReadRpc's constructor: a read of a key of a migration the shim
    /// knows is decided now by the client rules (the destination alone for
    /// a key a watermark covers, else both servers at once), and the
    /// response filled in as a READ reply; returns false when the read is
    /// to be sent as usual.
    static bool readNow(Context* context, uint64_t tableId, uint64_t keyHash,
                        Buffer* request, Buffer* response);

    /// ObjectRpcWrapper::send: the destination's session for a key of a
    /// migration the shim knows, or NULL (the tablet map decides).
    static Transport::SessionRef route(Context* context, uint64_t tableId,
                                       uint64_t keyHash);

    /// fulva_client_shim_counters; false without a shim.
    bool counters(struct fulva_shim_counters* out);
    bool hasShim() const { return handle != NULL; }
    /// A session to a server of this connection's cluster, by id.
    Transport::SessionRef session(uint64_t serverId)
    {
        return locators.session(ramcloud->clientContext, serverId);
    }

  PRIVATE:
    FulvaShim(RamCloud* ramcloud, void* handle);
    ~FulvaShim();

    static int opExecute(void* context,
                         const fulva_client_operation* operations,
                         fulva_client_outcome* outcomes, size_t count,
                         uint32_t timeoutMicros, char* error,
                         size_t errorLength);
    static int opTabletOwner(void* context, uint64_t tableId,
                             const void* key, uint16_t keyLength, int fresh,
                             uint64_t* serverId);

    static bool destinationOf(FulvaShim* shim, uint64_t tableId,
                              uint64_t keyHash, uint64_t* server);
    /// Asks the plugin how many migrations it knows (after it learned
    /// something).
    void refresh();
    /// Runs the READ in `request` by the client rules and writes its
    /// outcome into `response` as a READ reply.
    void decideRead(uint64_t tableId, Buffer* request, Buffer* response);

    RamCloud* ramcloud;
    /// The plugin's shim for this connection.
    void* handle;
    /// Running migrations the plugin knows: while 0, requests are sent
    /// without asking it anything.
    uint32_t knownMigrations;
    /// Calls into the plugin on behalf of requests (what a connection that
    /// never meets a migration must not make).
    uint64_t pluginCalls;
    /// Requests other than reads (writes, removes, increments, and the keys
    /// of multi-key operations) sent straight to a migration's destination.
    uint64_t routedRequests;
    /// Where the plugin copies a value (RAMCloud's largest object).
    std::vector<char> value;
    FulvaDirect::Locators locators;
    /// Kept alive for the plugin (it holds a copy, but the context must be
    /// this object).
    fulva_shim_host_ops ops;

    DISALLOW_COPY_AND_ASSIGN(FulvaShim);
};

} // namespace RAMCloud

#endif // RAMCLOUD_FULVASHIM_H
