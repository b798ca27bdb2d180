import Logging
import Foundation
import GRDB
import SyncCore

extension ServerStore {
    /// One full sync exchange (DESIGN §5): push in a group-committed write
    /// transaction (acknowledged only after it commits), pull from a read
    /// snapshot, then record disclosures and the device's state.
    func sync(_ request: SyncRequest, device: DeviceRecord) async throws -> SyncResponse {
        let now = self.now
        let schema = self.schema
        let policyStore = self.policyStore
        let audit = self.audit
        let identity = device.identity
        let userID = device.user.id

        let (push, committedPolicy) = try await committer.write { db -> (PushResult, CachedPolicy?) in
            guard let user = try UserRow.find(db, id: userID) else { throw ServerError.unauthorized() }
            let revoked = try Int64.fetchOne(try db.cachedStatement(sql: "SELECT revoked_at FROM devices WHERE id = ?"), arguments: [identity.deviceID])
            guard revoked == nil else { throw Self.revokedError() }
            let (policy, cacheAfterCommit) = try self.policyContext(db, user: user, now: now)
            var backend = SQLiteSyncBackend(db: db, device: identity, now: now, policyStore: policyStore, userID: userID)
            let result = try PushProcessor.process(request.ops, device: identity, policy: policy, schema: schema, now: now,
                                                   backend: &backend)
            try audit.append(backend.audit, db: db)
            // Stamps far ahead of the server's clock: the device's clock is wrong (DESIGN §3 clockSkew).
            let skewed = request.ops.filter { $0.stamp.milliseconds > now + 5 * 60 * 1000 }.count
            if skewed > 0 {
                try db.cachedStatement(sql: "UPDATE devices SET clock_skew = clock_skew + ? WHERE id = ?")
                    .execute(arguments: [skewed, identity.deviceID])
            }
            return (result, cacheAfterCommit)
        }
        cache(committedPolicy)
        metrics.recordPush(push)
        await configuration.afterPushCommitted?()

        let (pull, policy) = try await pool.read { db -> (PullResult, PolicyContext) in
            // What may be disclosed is decided in the snapshot the data is read
            // from: a revocation that committed since the push must already hold.
            var policy = push.policy
            let version = try PolicyStore.version(db)
            if version != policy.version {
                guard let user = try UserRow.find(db, id: userID) else { throw ServerError.unauthorized() }
                policy = try self.policyContext(db, user: user, now: now, version: version).context
            }
            let backend = SQLiteSyncBackend(db: db, device: identity, now: now, policyStore: policyStore, userID: userID,
                                            readSnapshot: true)
            return (try PullBuilder.build(request, device: identity, policy: policy, schema: schema, now: now,
                                          push: push, backend: backend), policy)
        }

        let auditAck = try await committer.write { db -> UInt64 in
            var records: [AuditRecord] = []
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
            let ack = try Self.storeOfflineReads(request.auditEvents, device: identity, db: db, now: now, records: &records)
            try audit.append(records, db: db)
            let held = pull.needHeld ? Data() : HeldSegment.storageBytes(pull.heldAfter)
            try db.cachedStatement(sql: """
                UPDATE devices SET last_sync_at = ?, last_cursor = ?, held = CASE WHEN ? THEN held ELSE ? END WHERE id = ?
                """).execute(arguments: [Int64(now), Int64(pull.cursor.seq), pull.needHeld, held, identity.deviceID])
            return ack
        }

        var current = policy
        current.serverTime = now
        return SyncResponse(accepted: AcceptedRange.ranges(of: push.accepted), rejected: push.rejected, deltas: pull.deltas,
                            snapshots: pull.snapshots, purge: pull.purge,
                            policy: request.policyDigest == current.digest ? nil : current,
                            schema: schema.matches(request.schemaHash) ? nil : schema, cursor: pull.cursor, more: pull.more,
                            needHeld: pull.needHeld, stateCheck: pull.stateCheck, auditAck: auditAck, serverTime: now,
                            maxBody: configuration.maxBody, epochs: pull.epochs)
    }

    /// Stores offline reads uploaded by a device: deduplicated by device
    /// sequence, gaps flagged, and acknowledged up to the contiguous prefix.
    static func storeOfflineReads(_ events: [AuditEvent], device: DeviceIdentity, db: Database, now: UInt64,
                                  records: inout [AuditRecord]) throws -> UInt64 {
        var ack = UInt64(try Int64.fetchOne(try db.cachedStatement(sql: "SELECT audit_ack FROM devices WHERE id = ?"), arguments: [device.deviceID]) ?? 0)
        guard !events.isEmpty else { return ack }
        let actions: Set<String> = ["show", "export", "logList", "goalList"]
        for event in events.sorted(by: { $0.deviceSeq < $1.deviceSeq }) where event.deviceSeq > ack {
            try db.execute(sql: "INSERT OR IGNORE INTO device_reads (device_id, device_seq) VALUES (?, ?)",
                           arguments: [device.deviceID, Int64(event.deviceSeq)])
            guard db.changesCount > 0 else { continue }
            records.append(AuditRecord(at: now, actor: device.user, device: device.deviceID, action: "offlineRead",
                                       household: event.household, purpose: event.purpose, count: event.count,
                                       detail: "\(actions.contains(event.action) ? event.action : "unknown") deviceSeq=\(event.deviceSeq) at=\(event.at)"))
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
