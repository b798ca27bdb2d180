import Foundation
import SyncCore
import SyncServer

/// One `fieldcli sync`: round trips until the server has nothing more,
/// pushing pending ops in chunks under the server's `maxBody`, saving the
/// replica after every round (DESIGN §5, §7).
struct SyncSession {
    struct Summary: Encodable, Sendable {
        var server: String
        var rounds = 0
        var pushed = 0
        var accepted = 0
        var rejected = 0
        var rejectedReasons: [String: Int] = [:]
        var pulled = 0
        var snapshots = 0
        var purged = 0
        var newConflicts = 0
        var resnapshots = 0
        /// The server already had changes of this device that its store lacked (restored from a backup).
        var restored = false
        /// Minutes this device's clock was ahead of the server's (nil: within 5 minutes).
        var clockAheadMinutes: Int?
        var auditUploaded = 0
        var pendingLeft = 0
        var bytesUp = 0
        var bytesDown = 0
        var wiped = false
        /// The server gives this user no access at all (no role purposes, assignments or grants):
        /// the account was disabled, or its role gives nothing. Said, so a purge of everything is explained.
        var noAccess = false
        /// The policy now asks for a passphrase on the device key, which has none.
        var passphraseRequired = false
    }

    static func run(_ workspace: inout Workspace, progress: Bool) async throws -> Summary {
        guard let token = try workspace.store.token() else { throw CLIError.other("This device has no token; enroll it again.") }
        let client = try HTTPClient(server: workspace.identity.server, token: token,
                                    timeout: Double(workspace.context.environment["FIELDCLI_TIMEOUT"] ?? "") ?? 5,
                                    unreachableAdvice: HTTPClient.syncAdvice)
        var summary = Summary(server: workspace.identity.server)
        var maxBody = max(4096, workspace.identity.maxBody)
        var maxOps = Int.max
        while summary.rounds < 10_000 {
            summary.rounds += 1
            var request = workspace.replica.makeRequest(maxOps: maxOps)
            var body = request.binaryEncoded()
            // Chunk pushes under the server's limit (leave room for headers and growth).
            // Halve the pending ops taken (drafts absorbed on the wire count too).
            var taken = min(maxOps, workspace.replica.pending.count)
            while body.count > maxBody * 9 / 10, taken > 1 {
                maxOps = max(1, taken / 2)
                taken = maxOps
                request = workspace.replica.makeRequest(maxOps: maxOps)
                body = request.binaryEncoded()
            }
            let wire = body.count > Gzip.threshold ? Gzip.compress(body).count : body.count
            summary.bytesUp += wire
            if progress {
                workspace.context.output.progress("sync: round \(summary.rounds), pushing \(taken) of \(workspace.replica.pending.count) pending, pulled \(summary.pulled)…")
            }
            let reply = try await client.send("POST", "v1/sync", body: body, contentType: "application/x-fieldsync")
            summary.bytesDown += reply.body.count
            if reply.status == 401, Self.isRevocation(reply) {
                try LocalStore.wipe(home: workspace.context.home)
                summary.wiped = true
                return summary
            }
            guard reply.status == 200 else {
                if reply.status == 413 {
                    guard taken > 1 || maxBody > 4096 else {
                        throw CLIError(.network, "The server refuses even one pending write as too large (HTTP 413). Nothing was lost; ask the administrator to raise fieldsyncd --max-body.")
                    }
                    maxBody = max(4096, maxBody / 2)
                    maxOps = max(1, taken / 2)
                    continue
                }
                throw HTTPClient.failure(reply, action: "Sync", badRequestIsUsage: false)
            }
            let response: SyncResponse
            do {
                response = try SyncResponse(binary: reply.body)
            } catch {
                throw CLIError(.network, "The server's sync answer could not be read (\(error.message)). Nothing was lost; try again.")
            }
            maxBody = max(4096, response.maxBody)
            let pendingBefore = workspace.replica.pending.count
            let auditBefore = workspace.replica.auditQueue.count
            let outcome = workspace.replica.apply(response, wall: workspace.now)
            try workspace.save()
            summary.pushed += taken
            summary.accepted += outcome.accepted
            summary.rejected += outcome.rejected.count
            for record in outcome.rejected { summary.rejectedReasons[record.reason.rawValue, default: 0] += 1 }
            summary.pulled += outcome.pulledElements
            summary.snapshots += outcome.snapshots
            summary.purged += outcome.purged.count
            summary.newConflicts += outcome.newConflicts
            summary.resnapshots += outcome.resnapshots.count
            summary.restored = summary.restored || outcome.restored
            summary.auditUploaded += max(0, auditBefore - workspace.replica.auditQueue.count)
            let progressed = workspace.replica.pending.count < pendingBefore
            if outcome.needsAnotherRound { continue }
            if !workspace.replica.pending.isEmpty && progressed { continue }
            break
        }
        summary.pendingLeft = workspace.replica.pending.count
        let policy = workspace.replica.policy
        summary.noAccess = policy.rolePurposes.isEmpty && policy.assignments.isEmpty && policy.grants.isEmpty
        if progress { workspace.context.output.progress("") }
        return summary
    }

    private static func isRevocation(_ reply: HTTPClient.Reply) -> Bool {
        struct Envelope: Decodable {
            struct Body: Decodable {
                var code: String
                var purge: String?
            }
            var error: Body
        }
        return (try? JSONDecoder().decode(Envelope.self, from: Data(reply.body)))?.error.purge == "all"
    }
}
