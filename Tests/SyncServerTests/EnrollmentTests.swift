import Foundation
import GRDB
import Testing
import SyncCore
import SyncServer

/// Point 2: one-time enrollment codes, device tokens and replica IDs, and
/// tokens stored only as hashes.
@Suite("Enrollment")
struct EnrollmentTests {
    @Test("an enrollment code gives a device token and a server-issued replica; each device gets its own")
    func enrollGivesTokenAndReplica() async throws {
        try await withServer(maxBody: 512 * 1024) { server in
            try await server.addUser("wendy", role: "wmo-consulent", contact: "wendy@gemeente.example")
            let code = try await server.enrollmentCode("wendy")
            #expect(code.hasPrefix("fse_"))
            let reply = try await server.enroll(code: code, name: "wendy-laptop")
            #expect(reply.status == 200, "\(reply)")
            let first = try reply.decode(EnrollResponse.self)
            #expect(first.token.hasPrefix("fsd_"))
            #expect(first.user == "wendy")
            #expect(first.role == "wmo-consulent")
            #expect(first.replica >= 2, "replica 1 is the server's own")
            #expect(first.serverTime == server.clock.now)
            #expect(first.maxBody == 512 * 1024)

            let second = try await server.enroll(code: try await server.enrollmentCode("wendy"), name: "wendy-phone").decode(EnrollResponse.self)
            #expect(second.replica != first.replica)
            #expect(second.token != first.token)
            #expect(second.deviceID != first.deviceID)

            let devices = try await server.devices()
            #expect(Set(devices.map(\.id)) == [first.deviceID, second.deviceID])
            #expect(devices.allSatisfy { $0.user == "wendy" && !$0.revoked && $0.lastSyncAt == nil })
            #expect(Set(devices.map(\.replica)) == [first.replica, second.replica])

            // The device token syncs; it is not an admin token, and the admin token is not a device token.
            var device = TestDevice(enrollment: first, encoding: .binary)
            try await device.sync(server)
            let asAdmin = try await server.http.send("GET", "/v1/admin/users", token: first.token)
            #expect(asAdmin.status == 401)
            let (adminSync, _) = try await postSync(server.http, token: server.adminToken, request: device.replica.makeRequest(), encoding: .binary)
            #expect(adminSync.status == 401)
            #expect(adminSync.error?.code == "unauthorized")
        }
    }

    @Test("a device name with a line break or an escape is refused (it would fake rows in an admin's device list); the code stays usable")
    func deviceNamesAreOneLine() async throws {
        try await withServer { server in
            try await server.addUser("bas", role: "buurtcoach")
            let code = try await server.enrollmentCode("bas")
            for name in ["laptop\n00000000-fake  laptop-nep  admin", "laptop\u{1B}[31m"] {
                let refused = try await server.enroll(code: code, name: name)
                #expect(refused.status == 400, "\(refused)")
                #expect(refused.error?.message.contains("one line") == true, "\(refused)")
            }
            #expect(try await server.enroll(code: code, name: "bas-laptop").status == 200)
        }
    }

    @Test("a replayed, unknown or expired enrollment code is a 401 with a JSON error")
    func replayedUnknownAndExpiredCodes() async throws {
        try await withServer { server in
            try await server.addUser("bas", role: "buurtcoach")
            let code = try await server.enrollmentCode("bas")
            #expect(try await server.enroll(code: code, name: "bas-laptop").status == 200)

            let replay = try await server.enroll(code: code, name: "thief")
            #expect(replay.status == 401)
            #expect(replay.isJSON)
            #expect(replay.error?.code == "unauthorized")
            #expect(replay.error?.message.isEmpty == false)

            let unknown = try await server.enroll(code: "fse_" + String(repeating: "x", count: 43), name: nil)
            #expect(unknown.status == 401)
            #expect(unknown.error?.code == "unauthorized")

            let expiring = try await server.enrollmentCode("bas")
            server.clock.advance(73 * hour)  // codes live 72 hours by default
            let expired = try await server.enroll(code: expiring, name: nil)
            #expect(expired.status == 401)
            #expect(expired.error?.code == "unauthorized")

            // Only the one good enrollment made a device.
            #expect(try await server.devices().count == 1)
        }
    }

    @Test("a code of a user disabled after it was issued does not enroll")
    func disabledUserCannotEnroll() async throws {
        try await withServer { server in
            try await server.addUser("sam", role: "schuldhulp")
            let code = try await server.enrollmentCode("sam")
            _ = try await server.adminOK(AdminAPI.Done.self, "POST", "users/sam/disable")
            let reply = try await server.enroll(code: code, name: nil)
            #expect((400..<500).contains(reply.status), "\(reply)")
            #expect(reply.error != nil)
            #expect(try await server.devices().isEmpty)
            let another = try await server.admin("POST", "users/sam/enrollment-code")
            #expect(another.status == 409)
        }
    }

    @Test("tokens and codes are stored only as SHA-256 hashes: the raw strings are not in the database or its WAL")
    func tokensAreStoredHashed() async throws {
        let directory = makeTemporaryDirectory("hashed")
        defer { try? FileManager.default.removeItem(at: directory) }
        let server = try await TestServer.start(directory: directory)
        try await server.addUser("wendy", role: "wmo-consulent")
        let code = try await server.enrollmentCode("wendy")
        let enrollment = try await server.enroll(code: code, name: "wendy-laptop").decode(EnrollResponse.self)
        let unusedCode = try await server.enrollmentCode("wendy")
        let secrets = [("device token", enrollment.token), ("used code", code), ("unused code", unusedCode),
                       ("admin token", server.adminToken)]

        func check(_ when: String) {
            let bytes = StoreFile.bytesOnDisk(server.databaseURL)
            #expect(bytes.count > 0)
            for (what, secret) in secrets {
                #expect(!bytes.containsBytes(secret), "the raw \(what) is in the store \(when)")
                // Positive control: its hash is there, so we are looking at the right bytes.
                let hash = Data(SHA256Digest.hash(Array(secret.utf8)))
                #expect(bytes.range(of: hash) != nil, "the hash of the \(what) should be in the store \(when)")
            }
        }
        check("while running")
        await server.stop()
        check("after shutdown")
        // The token column holds the 32-byte hash.
        let stored = try StoreFile.read(server.databaseURL) { db in
            try Data.fetchOne(db, sql: "SELECT token_hash FROM devices WHERE id = ?", arguments: [enrollment.deviceID])
        }
        #expect(stored == Data(SHA256Digest.hash(Array(enrollment.token.utf8))))
    }
}
