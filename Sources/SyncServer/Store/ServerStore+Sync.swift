import Logging
import Foundation
import GRDB
import SyncCore

extension ServerStore {
    /// What one sync's transaction decided, handed back after it commits.
    private struct SyncOutcome: Sendable {
        var push: PushResult
        var pull: PullResult
        var auditAck: UInt64
        /// The policy the push started from, with its digest.
        var policy: CachedPolicy
        /// Built in this transaction: cached only once it has committed.
        var policyIsFresh: Bool
    }

    /// One full sync exchange (DESIGN §5) in one group-committed write
    /// transaction: push, pull, the disclosures' audit rows and the device's
    /// state. Nothing is answered before that transaction commits, so an
    /// acknowledged op is durable and a disclosure is never sent unaudited.
    ///
    /// The pull reads in the push's transaction rather than a read snapshot
    /// of its own (decision 37): what is disclosed is decided by the same
    /// state the push was checked against, so a revocation either precedes
    /// both or neither; and the writer's page cache is warm, while a reader
    /// connection re-reads every page after each commit.
    func sync(_ request: SyncRequest, device: DeviceRecord) async throws -> SyncResponse {
        let now = self.now
        let schema = self.schema
        let policyStore = self.policyStore
        let audit = self.audit
        let identity = device.identity
        let userID = device.user.id

        let outcome = try await committer.write { db -> SyncOutcome in
            // The user and the device's standing, in one read.
            guard let standing = try Row.fetchOne(try db.cachedStatement(sql: """
                SELECT users.id, users.name, users.role, users.contact, users.disabled, devices.revoked_at, devices.audit_ack
                FROM devices JOIN users ON users.id = devices.user_id WHERE devices.id = ? AND users.id = ?
                """), arguments: [identity.deviceID, userID]) else { throw ServerError.unauthorized() }
            let user = UserRow(row: standing)
            guard (standing["revoked_at"] as Int64?) == nil else { throw Self.revokedError() }
            let acknowledgedReads = UInt64(standing["audit_ack"] as Int64)
            let (cachedPolicy, fresh) = try self.policyContext(db, user: user, now: now)
            let policy = cachedPolicy.context
            var pushBackend = SQLiteSyncBackend(db: db, device: identity, now: now, policyStore: policyStore, userID: userID)
            var ops = request.ops  // lent op by op (PushProcessor); shared with `request`, so copied once here
            let push = try PushProcessor.process(&ops, device: identity, policy: policy, schema: schema, now: now,
                                                 backend: &pushBackend)
            var records = pushBackend.audit
            // Stamps far ahead of the server's clock: the device's clock is wrong (DESIGN §3 clockSkew).
            let skewed = request.ops.filter { $0.stamp.milliseconds > now + 5 * 60 * 1000 }.count
            if skewed > 0 {
                try db.cachedStatement(sql: "UPDATE devices SET clock_skew = clock_skew + ? WHERE id = ?")
                    .execute(arguments: [skewed, identity.deviceID])
            }

            // The push is done, so rows no longer change: the pull's lookups of one segment share one read.
            var pullBackend = SQLiteSyncBackend(db: db, device: identity, now: now, policyStore: policyStore, userID: userID,
                                                readSnapshot: true)
            let pull = try PullBuilder.build(request, device: identity, policy: push.policy, schema: schema, now: now,
                                             push: push, backend: &pullBackend)
            for (patch, kind) in pull.snapshots.map({ ($0, "snapshot") }) + pull.deltas.map({ ($0, "delta") }) {
                let sensitive = schema.isSensitive(patch.segment.purpose)
                records.append(AuditRecord(at: now, actor: identity.user, device: identity.deviceID, action: "disclose",
                                           household: patch.segment.household, purpose: patch.segment.purpose,
                                           count: patch.elements.count, detail: kind + (sensitive ? " sensitive" : "")))
            }
            for purge in pull.purge {
                records.append(AuditRecord(at: now, actor: identity.user, device: identity.deviceID, action: "purgeInstructed",
                                           household: purge.segment.household, purpose: purge.segment.purpose, detail: purge.reason))
            }
            let auditAck = try Self.storeOfflineReads(request.auditEvents, acknowledged: acknowledgedReads, device: identity, schema: schema,
                                                      db: db, now: now, records: &records)
            try audit.append(records, db: db)
            let held = pull.needHeld ? Data() : HeldSegment.storageBytes(pull.heldAfter)
            try db.cachedStatement(sql: """
                UPDATE devices SET last_sync_at = ?, last_cursor = ?, held = CASE WHEN ? THEN held ELSE ? END WHERE id = ?
                """).execute(arguments: [Int64(now), Int64(pull.cursor.seq), pull.needHeld, held, identity.deviceID])
            return SyncOutcome(push: push, pull: pull, auditAck: auditAck, policy: cachedPolicy, policyIsFresh: fresh)
        }
        if outcome.policyIsFresh { cache(outcome.policy) }
        metrics.recordPush(outcome.push)

        let pull = outcome.pull
        var current = outcome.push.policy
        // The push changes the policy only when it creates a household (its creator is assigned).
        let currentDigest = current == outcome.policy.context ? outcome.policy.digest : current.digest
        current.serverTime = now
        return SyncResponse(accepted: AcceptedRange.ranges(of: outcome.push.accepted), rejected: outcome.push.rejected,
                            deltas: pull.deltas, snapshots: pull.snapshots, purge: pull.purge,
                            policy: request.policyDigest == currentDigest ? nil : current,
                            schema: schema.matches(request.schemaHash) ? nil : schema, cursor: pull.cursor, more: pull.more,
                            needHeld: pull.needHeld, stateCheck: pull.stateCheck, auditAck: outcome.auditAck, serverTime: now,
                            maxBody: configuration.maxBody, epochs: pull.epochs)
    }

    /// Stores offline reads uploaded by a device: deduplicated by device
    /// sequence, gaps flagged, and acknowledged up to the contiguous prefix.
    /// `acknowledged`: the device's stored acknowledgement so far.
    /// What a device reports goes into the audit log, which is never erased, so only codes and
    /// numbers are kept from it: a purpose the schema does not know is stored as none (and named
    /// `unknownPurpose`), a count is clamped, never copied as the device sent it.
    static func storeOfflineReads(_ events: [AuditEvent], acknowledged: UInt64, device: DeviceIdentity, schema: Schema, db: Database,
                                  now: UInt64, records: inout [AuditRecord]) throws -> UInt64 {
        var ack = acknowledged
        guard !events.isEmpty else { return ack }
        let actions: Set<String> = ["show", "export", "logList", "goalList", "rejectedList"]
        for event in events.sorted(by: { $0.deviceSeq < $1.deviceSeq }) {
            let hash = Data(event.chainHash.bytes)
            var reused = false
            try db.execute(sql: "INSERT OR IGNORE INTO device_reads (device_id, device_seq, chain_hash) VALUES (?, ?, ?)",
                           arguments: [device.deviceID, Int64(event.deviceSeq), hash])
            if db.changesCount == 0 {
                // The number is taken: a repeat of that read (a lost response), or another read under
                // it, from a device whose store is older than what it sent (restored from a backup).
                // That read is kept too, once: the device has nothing else that records it.
                let stored = try Data?.fetchOne(db, sql: "SELECT chain_hash FROM device_reads WHERE device_id = ? AND device_seq = ?",
                                                arguments: [device.deviceID, Int64(event.deviceSeq)]) ?? nil
                // A row from before hashes were kept cannot tell: the read is kept (once), at the cost of
                // a second record for a repeat whose response was lost just before the upgrade.
                guard stored != hash else { continue }
                try db.execute(sql: "INSERT OR IGNORE INTO device_reads_reused (device_id, chain_hash) VALUES (?, ?)",
                               arguments: [device.deviceID, hash])
                guard db.changesCount > 0 else { continue }
                reused = true
            }
            let purpose = event.purpose.flatMap { schema.purpose($0) == nil ? nil : $0 }
            let unknownPurpose = event.purpose != nil && purpose == nil
            records.append(AuditRecord(at: now, actor: device.user, device: device.deviceID, action: "offlineRead",
                                       household: event.household, purpose: purpose, count: min(max(event.count, 0), 1 << 30),
                                       detail: "\(actions.contains(event.action) ? event.action : "unknown") deviceSeq=\(event.deviceSeq) at=\(event.at)"
                                           + (unknownPurpose ? " unknownPurpose" : "") + (reused ? " reusedSeq" : "")))
        }
        while try Bool.fetchOne(try db.cachedStatement(sql: "SELECT EXISTS (SELECT 1 FROM device_reads WHERE device_id = ? AND device_seq = ?)"),
                                arguments: [device.deviceID, Int64(ack + 1)]) == true {
            ack += 1
        }
        if let highest = events.map(\.deviceSeq).max(), highest > ack {
            records.append(AuditRecord(at: now, actor: device.user, device: device.deviceID, action: "offlineReadGap",
                                       detail: "missing deviceSeq \(ack + 1) before \(highest)"))
        }
        try db.cachedStatement(sql: "UPDATE devices SET audit_ack = ? WHERE id = ?").execute(arguments: [Int64(ack), device.deviceID])
        return ack
    }
}
