/* Copyright (c) 2026 Fulva authors.
 *
 * The client side of Fulva's control RPCs (fulva.h): start a migration at
 * its destination and read its status there. Linked into libramcloud; the
 * destination is addressed by server id, its locator taken from the
 * coordinator's server list.
 */

#include <cstdio>
#include <string>

#include "ClientException.h"
#include "CoordinatorClient.h"
#include "RamCloud.h"
#include "RpcWrapper.h"
#include "ServerList.pb.h"
#include "TransportManager.h"
#include "WireFormat.h"
#include "fulva/FulvaClient.h"

namespace RAMCloud {

namespace {

using FulvaClient::report;

/// A session to a server named by id (the coordinator's server list).
Transport::SessionRef
sessionTo(Context* context, uint64_t serverId)
{
    ProtoBuf::ServerList list;
    CoordinatorClient::getServerList(context, &list);
    for (int i = 0; i < list.server_size(); i++) {
        const ProtoBuf::ServerList::Entry& entry = list.server(i);
        if (entry.server_id() == serverId)
            return context->transportManager->getSession(
                    entry.service_locator());
    }
    throw ClientException(HERE, STATUS_SERVER_NOT_UP);
}

/// An RPC to a session the caller chose (RpcWrapper's plain send()).
template<typename Op>
class ControlRpc : public RpcWrapper {
  public:
    ControlRpc(Context* context, Transport::SessionRef target)
        : RpcWrapper(sizeof(typename Op::Response))
        , context(context)
        , transportFailures(0)
    {
        session = target;
    }
    typename Op::Request* header() { return allocHeader<Op>(); }
    void start() { send(); }
    Buffer* reply() { simpleWait(context); return response; }

  PROTECTED:
    /// An aborted session (a busy server under load): a fresh session and
    /// the same request, a few times; then the call fails with a message
    /// rather than leaving the reply unset.
    bool handleTransportError()
    {
        if (++transportFailures > MAX_TRANSPORT_FAILURES)
            throw Exception(HERE, "no reply from the server after " +
                            std::to_string(MAX_TRANSPORT_FAILURES) +
                            " attempts");
        string locator = session->serviceLocator;
        context->transportManager->flushSession(locator);
        session = context->transportManager->getSession(locator);
        send();
        return false;
    }

  PRIVATE:
    static const int MAX_TRANSPORT_FAILURES = 5;
    Context* context;
    int transportFailures;
    DISALLOW_COPY_AND_ASSIGN(ControlRpc);
};

} // namespace
} // namespace RAMCloud

using namespace RAMCloud; // NOLINT
using RAMCloud::FulvaClient::guarded;

extern "C" int
fulva_admin_start_migration(struct rc_client* client,
                            const struct fulva_migration_request* request,
                            char* error, size_t errorLength)
{
    if (request == NULL) {
        report(error, errorLength, "no migration request");
        return FULVA_ERROR_INVALID_ARGUMENT;
    }
    return guarded(client, error, errorLength, [&](RamCloud& ramcloud) {
        Context* context = ramcloud.clientContext;
        ControlRpc<WireFormat::FulvaMigrate> rpc(context,
                sessionTo(context, request->destination));
        memcpy(&rpc.header()->migration, request, sizeof(*request));
        rpc.start();
        Buffer* reply = rpc.reply();
        const WireFormat::FulvaMigrate::Response* respHdr =
                reply->getStart<WireFormat::FulvaMigrate::Response>();
        const char* text = static_cast<const char*>(reply->getRange(
                sizeof32(*respHdr), respHdr->errorLength));
        report(error, errorLength, text == NULL ? "" :
               string(text, respHdr->errorLength));
        return static_cast<int>(respHdr->fulvaStatus);
    });
}

extern "C" int
fulva_admin_migration_status(struct rc_client* client, uint64_t destination,
                             uint64_t migrationId,
                             struct fulva_migration_status* status,
                             char* error, size_t errorLength)
{
    if (status == NULL) {
        report(error, errorLength, "no output for the status");
        return FULVA_ERROR_INVALID_ARGUMENT;
    }
    return guarded(client, error, errorLength, [&](RamCloud& ramcloud) {
        Context* context = ramcloud.clientContext;
        ControlRpc<WireFormat::FulvaStatus> rpc(context,
                sessionTo(context, destination));
        rpc.header()->migrationId = migrationId;
        rpc.start();
        Buffer* reply = rpc.reply();
        const WireFormat::FulvaStatus::Response* respHdr =
                reply->getStart<WireFormat::FulvaStatus::Response>();
        memcpy(status, &respHdr->status, sizeof(*status));
        if (respHdr->fulvaStatus == FULVA_ERROR_UNKNOWN_MIGRATION)
            report(error, errorLength, "the destination knows no such "
                   "migration");
        else if (respHdr->fulvaStatus == FULVA_ERROR_UNAVAILABLE)
            report(error, errorLength, "no Fulva plugin on the destination");
        else
            report(error, errorLength, "");
        return static_cast<int>(respHdr->fulvaStatus);
    });
}

extern "C" int
fulva_admin_transfer_probe(struct rc_client* client,
                           const struct fulva_transfer_probe* probe,
                           struct fulva_transfer_result* result,
                           char* error, size_t errorLength)
{
    if (probe == NULL || result == NULL) {
        report(error, errorLength, "no probe or no output for its result");
        return FULVA_ERROR_INVALID_ARGUMENT;
    }
    memset(result, 0, sizeof(*result));
    return guarded(client, error, errorLength, [&](RamCloud& ramcloud) {
        Context* context = ramcloud.clientContext;
        ControlRpc<WireFormat::FulvaTransferProbe> rpc(context,
                sessionTo(context, probe->destination));
        WireFormat::FulvaTransferProbe::Request* reqHdr = rpc.header();
        reqHdr->source = probe->source;
        reqHdr->bytes = probe->bytes;
        reqHdr->chunkBytes = probe->chunkBytes;
        reqHdr->outstanding = probe->outstanding;
        rpc.start();
        Buffer* reply = rpc.reply();
        const WireFormat::FulvaTransferProbe::Response* respHdr =
                reply->getStart<WireFormat::FulvaTransferProbe::Response>();
        const char* text = static_cast<const char*>(reply->getRange(
                sizeof32(*respHdr), respHdr->errorLength));
        report(error, errorLength, text == NULL ? "" :
               string(text, respHdr->errorLength));
        result->bytes = respHdr->bytes;
        result->nanos = respHdr->nanos;
        return static_cast<int>(respHdr->fulvaStatus);
    });
}
