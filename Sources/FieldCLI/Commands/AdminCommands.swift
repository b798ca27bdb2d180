import ArgumentParser
import Foundation
import SyncCore
import SyncServer

/// `fieldcli admin …`: the server's admin API (DESIGN §8). Needs --server and
/// --token (or FIELDSYNC_SERVER / FIELDSYNC_ADMIN_TOKEN); every action is
/// audited on the server under the admin's name.
struct AdminCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "admin",
        abstract: "Manage users, access, devices, conflicts, quarantine, audit and erasure on the server.",
        discussion: "Usage: fieldcli admin --server URL --token T SUBCOMMAND (or set FIELDSYNC_SERVER and FIELDSYNC_ADMIN_TOKEN).",
        subcommands: [User.self, EnrollCode.self, AdminToken.self, Assign.self, Unassign.self, GrantCommand.self, RevokeGrant.self, Access.self,
                      Device.self, Household.self, Households.self, Conflicts.self, Resolve.self, Rejects.self, Audit.self,
                      Erase.self, ConsentBlock.self])

    @Option(help: "The server URL (or FIELDSYNC_SERVER).") var server: String?
    @Option(help: "An admin token (or FIELDSYNC_ADMIN_TOKEN).") var token: String?

    static func client() throws -> HTTPClient {
        let context = CLIContext.current
        guard let server = context.adminServer else { throw CLIError.usage("Give --server URL (or set FIELDSYNC_SERVER).") }
        guard let token = context.adminToken else { throw CLIError.usage("Give --token T (or set FIELDSYNC_ADMIN_TOKEN).") }
        return try HTTPClient(server: server, token: token)
    }

    static func household(_ text: String) throws -> HouseholdID {
        guard let id = HouseholdID(text) else { throw CLIError.usage("\(text) is not a household ID (a UUID; 'fieldcli admin households' lists them).") }
        return id
    }

    /// An end time, which must lie ahead: an assignment or grant that has already ended would be stored
    /// and shown as given, yet give no access at all.
    static func until(_ text: String?) throws -> UInt64? {
        guard let text else { return nil }
        let end = try parseTime(text, option: "--until")
        guard end > CLIContext.current.now else {
            throw CLIError.usage("--until \(text) has already passed. Give a later date, or leave --until out for no end.")
        }
        return end
    }

    static func done(_ result: AdminAPI.Done) { CLIContext.current.emit(result) { result.message } }

    struct User: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "user", abstract: "Users.", subcommands: [Add.self, List.self, Disable.self])

        struct Add: AsyncParsableCommand {
            static let configuration = CommandConfiguration(commandName: "add", abstract: "Add a user with a role (see 'fieldcli admin user list' and the policy file).")
            @Argument(help: "User name (letters, digits, - _ . @).") var name: String
            @Option(help: "Role, e.g. buurtcoach, wmo-consulent, schuldhulp, admin.") var role: String
            @Option(help: "How colleagues reach this worker (shown in involvement lists).") var contact: String?
            func run() async throws {
                let user: AdminAPI.UserInfo = try await AdminCommand.client().json("POST", "v1/admin/users",
                    body: AdminAPI.AddUser(name: name, role: role, contact: contact), action: "user add")
                CLIContext.current.emit(user) {
                    // An admin works through the admin API with a token; a worker needs a device.
                    user.role == "admin"
                        ? "Added user \(user.name) (\(user.role)). Give them an admin token: fieldcli admin admin-token \(user.name)"
                        : "Added user \(user.name) (\(user.role)). Give them a code: fieldcli admin enroll-code \(user.name)"
                }
            }
        }

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(commandName: "list", abstract: "List users.")
            func run() async throws {
                let users: [AdminAPI.UserInfo] = try await AdminCommand.client().json("GET", "v1/admin/users", body: NoBody?.none, action: "user list")
                CLIContext.current.emit(users) {
                    Table.render(["USER", "ROLE", "DEVICES", "DISABLED", "CONTACT"], users.map {
                        [$0.name, $0.role, String($0.devices), $0.disabled ? "yes" : "no", $0.contact]
                    })
                }
            }
        }

        struct Disable: AsyncParsableCommand {
            static let configuration = CommandConfiguration(commandName: "disable", abstract: "Disable a user: their devices lose all access at the next sync.")
            @Argument(help: "The user name.") var name: String
            func run() async throws {
                AdminCommand.done(try await AdminCommand.client().json("POST", "v1/admin/users/\(name)/disable", body: NoBody?.none, action: "user disable"))
            }
        }
    }

    struct EnrollCode: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "enroll-code", abstract: "Print a one-time enrollment code for a user's device.")
        @Argument(help: "The user name ('fieldcli admin user list' lists them).") var user: String
        func run() async throws {
            let code: AdminAPI.EnrollmentCode = try await AdminCommand.client().json("POST", "v1/admin/users/\(user)/enrollment-code",
                                                                                     body: NoBody?.none, action: "enroll-code")
            CLIContext.current.emit(code) { "\(code.code)\n(valid until \(TimeText.iso(code.expiresAt)); use once: fieldcli enroll --server URL --code CODE)" }
        }
    }

    struct AdminToken: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "admin-token",
            abstract: "Issue an admin token for a user with the admin role (named admins; audited); --revoke revokes all of theirs.")
        @Argument(help: "The user name ('fieldcli admin user list' lists them).") var user: String
        @Flag(help: "Revoke every admin token of this user instead (a leaked token); then issue a new one.") var revoke = false
        func run() async throws {
            if revoke {
                AdminCommand.done(try await AdminCommand.client().json("POST", "v1/admin/users/\(user)/admin-tokens/revoke",
                                                                       body: NoBody?.none, action: "admin-token --revoke"))
                return
            }
            let result: [String: String] = try await AdminCommand.client().json("POST", "v1/admin/users/\(user)/admin-token",
                                                                                 body: NoBody?.none, action: "admin-token")
            CLIContext.current.emit(result) { "\(result["token"] ?? "")\n(shown once; store it in a password manager)" }
        }
    }

    struct Assign: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "assign", abstract: "Assign a user to a household.")
        @Argument(help: "The user name ('fieldcli admin user list' lists them).") var user: String
        @Argument(help: "The household's full ID ('fieldcli admin households' lists them).") var household: String
        @Option(help: "End of the assignment, e.g. 2027-01-01.") var until: String?
        func run() async throws {
            AdminCommand.done(try await AdminCommand.client().json("POST", "v1/admin/assignments",
                body: AdminAPI.Assign(user: user, household: try AdminCommand.household(household), until: try AdminCommand.until(until)), action: "assign"))
        }
    }

    struct Unassign: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "unassign", abstract: "Unassign a user; their devices purge the household at the next sync.")
        @Argument(help: "The user name ('fieldcli admin user list' lists them).") var user: String
        @Argument(help: "The household's full ID ('fieldcli admin households' lists them).") var household: String
        func run() async throws {
            AdminCommand.done(try await AdminCommand.client().json("POST", "v1/admin/assignments/remove",
                body: AdminAPI.Assign(user: user, household: try AdminCommand.household(household), until: nil), action: "unassign"))
        }
    }

    struct GrantCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "grant", abstract: "Grant a user a purpose, for all their households or one.")
        @Argument(help: "The user name ('fieldcli admin user list' lists them).") var user: String
        @Argument(help: "Purpose code, e.g. WGS.") var purpose: String
        @Flag(help: "Read access.") var read = false
        @Flag(help: "Write access (implies read).") var write = false
        @Option(help: "Only this household.") var household: String?
        @Option(help: "Until, e.g. 2026-12-31.") var until: String?
        func validate() throws {
            guard read != write else { throw ValidationError("Give exactly one of --read or --write.") }
        }
        func run() async throws {
            let result: AdminAPI.GrantResult = try await AdminCommand.client().json("POST", "v1/admin/grants",
                body: AdminAPI.GrantRequest(user: user, purpose: Purpose(purpose.uppercased()), access: write ? .write : .read,
                                            household: try household.map(AdminCommand.household), until: try AdminCommand.until(until)),
                action: "grant")
            CLIContext.current.emit(result) {
                "Granted \(result.access.rawValue) on \(result.purpose) to \(result.user)\(result.household.map { " for \($0)" } ?? "")\(result.until.map { " until \(TimeText.iso($0))" } ?? "")."
                    + (result.selfGrant ? "\nNote: you granted yourself access; this is flagged in the audit log." : "")
            }
        }
    }

    struct RevokeGrant: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "revoke-grant", abstract: "Revoke a grant; devices purge what is no longer readable.")
        @Argument(help: "The user name ('fieldcli admin user list' lists them).") var user: String
        @Argument(help: "Purpose code, e.g. WGS.") var purpose: String
        @Option(help: "The household of a household-scoped grant.") var household: String?
        func run() async throws {
            AdminCommand.done(try await AdminCommand.client().json("POST", "v1/admin/grants/revoke",
                body: AdminAPI.RevokeGrant(user: user, purpose: Purpose(purpose.uppercased()), household: try household.map(AdminCommand.household)),
                action: "revoke-grant"))
        }
    }

    struct Access: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "access", abstract: "Who can read what in a household, and why.")
        @Argument(help: "The household's full ID ('fieldcli admin households' lists them).") var household: String
        func run() async throws {
            let id = try AdminCommand.household(household)
            let entries: [AdminAPI.AccessEntry] = try await AdminCommand.client().json("GET", "v1/admin/households/\(id)/access",
                                                                                       body: NoBody?.none, action: "access")
            CLIContext.current.emit(entries) {
                if entries.isEmpty { return "Nobody is assigned to \(id)." }
                return Table.render(["USER", "ROLE", "ACCESS"], entries.map { entry in
                    [entry.user, entry.role, entry.purposes.map { "\($0.purpose):\($0.access.rawValue) (\($0.basis)\($0.until.map { " until \(TimeText.iso($0))" } ?? ""))" }.joined(separator: ", ")]
                })
            }
        }
    }

    struct Device: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "device", abstract: "Devices.", subcommands: [List.self, Revoke.self])
        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(commandName: "list", abstract: "List devices with last sync and lag.")
            func run() async throws {
                let devices: [AdminAPI.DeviceInfo] = try await AdminCommand.client().json("GET", "v1/admin/devices", body: NoBody?.none, action: "device list")
                CLIContext.current.emit(devices) {
                    Table.render(["DEVICE", "NAME", "USER", "REPLICA", "LAST SYNC", "LAG", "CLOCK SKEW", "STATE"], devices.map {
                        [$0.id, $0.name, $0.user, String($0.replica), $0.lastSyncAt.map(TimeText.iso) ?? "never", String($0.lag),
                         $0.clockSkew > 0 ? "\($0.clockSkew) ops ahead" : "-", $0.revoked ? "revoked" : "active"]
                    })
                }
            }
        }
        struct Revoke: AsyncParsableCommand {
            static let configuration = CommandConfiguration(commandName: "revoke", abstract: "Revoke a lost device (by ID or name); it wipes itself if it comes back.")
            @Argument(help: "The device ID or name ('fieldcli admin device list').") var device: String
            func run() async throws {
                AdminCommand.done(try await AdminCommand.client().json("POST", "v1/admin/devices/\(device)/revoke", body: NoBody?.none, action: "device revoke"))
            }
        }
    }

    struct Household: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "household", abstract: "Households on the server.", subcommands: [Create.self])
        struct Create: AsyncParsableCommand {
            static let configuration = CommandConfiguration(commandName: "create", abstract: "Create a household on the server; then assign workers.")
            @Option(help: "A label for the household, e.g. Fam. Jansen (stored as a REGIE field).") var label: String?
            func run() async throws {
                let info: AdminAPI.HouseholdInfo = try await AdminCommand.client().json("POST", "v1/admin/households",
                                                                                        body: AdminAPI.CreateHousehold(label: label), action: "household create")
                CLIContext.current.emit(info) { info.id.description }
            }
        }
    }

    struct Households: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "households", abstract: "List households on the server (IDs, purposes, who is assigned; no content).")
        func run() async throws {
            let list: [AdminAPI.HouseholdInfo] = try await AdminCommand.client().json("GET", "v1/admin/households", body: NoBody?.none, action: "households")
            CLIContext.current.emit(list) {
                Table.render(["HOUSEHOLD", "CREATED BY", "PURPOSES", "ASSIGNED", "LIKELY DUPLICATE OF"], list.map {
                    [$0.id.description, $0.createdBy, $0.segments.map { "\($0.purpose)\($0.epoch > 0 ? "@\($0.epoch)" : "")" }.joined(separator: ","),
                     $0.assigned.joined(separator: ","), $0.likelyDuplicates.map { String($0.description.prefix(8)) }.joined(separator: ",")]
                })
            }
        }
    }

    struct Conflicts: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
        commandName: "conflicts",
            abstract: "The server's conflict queue with value IDs.",
            discussion: "Values are shown only where you hold a grant, or with --break-glass REASON (audited with the reason).")
        @Argument(help: "Only this household (its full ID).") var household: String?
        @Option(name: .customLong("break-glass"), help: "Why you must see the values, e.g. a case number; no client details (kept in the audit log, never erased).") var breakGlass: String?
        func run() async throws {
            struct Query: Encodable {
                var household: HouseholdID?
                var breakGlass: String?
            }
            let entries: [AdminAPI.ConflictEntry] = try await AdminCommand.client().json("POST", "v1/admin/conflicts/query",
                body: Query(household: try household.map(AdminCommand.household), breakGlass: breakGlass), action: "conflicts")
            CLIContext.current.emit(entries) {
                if entries.isEmpty { return "The conflict queue is empty." }
                var lines: [String] = []
                for entry in entries {
                    lines.append("\(entry.household) \(entry.purpose) \(entry.name)\(entry.item.map { " item \($0)" } ?? ""): \(entry.kind), values \(entry.valueIDs.joined(separator: ", "))")
                    for value in entry.values ?? [] {
                        lines.append("   \(value.winner ? "*" : " ") \(value.id)  \(value.value)  (\(value.author), \(TimeText.iso(value.stamp.milliseconds)))")
                    }
                }
                if entries.contains(where: { $0.kind != ConflictInfo.Kind.editedWhileRemoved.rawValue }) {
                    lines.append("Resolve a field with: fieldcli admin resolve H FIELD --pick VALUE_ID")
                }
                if entries.contains(where: { $0.kind == ConflictInfo.Kind.editedWhileRemoved.rawValue }) {
                    lines.append("A goal edited while removed is settled on a worker's device: fieldcli goal keep H ITEM, or goal remove H ITEM")
                }
                return lines.joined(separator: "\n")
            }
        }
    }

    struct Resolve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "resolve", abstract: "Resolve a conflicting field on the server (audited).")
        @Argument(help: "The household's full ID ('fieldcli admin households' lists them).") var household: String
        @Argument(help: "The field name.") var field: String
        @Option(help: "Keep this value (its ID from 'fieldcli admin conflicts').") var pick: String?
        @Option(help: "Write this new value instead.") var value: String?
        @Option(name: .customLong("break-glass"), help: "Why you must write without a grant, e.g. a case number; no client details (kept in the audit log, never erased).") var breakGlass: String?
        func validate() throws {
            guard (pick == nil) != (value == nil) else { throw ValidationError("Give exactly one of --pick VALUE_ID or --value V.") }
        }
        func run() async throws {
            let result: AdminAPI.ResolveResult = try await AdminCommand.client().json("POST", "v1/admin/conflicts/resolve",
                body: AdminAPI.Resolve(household: try AdminCommand.household(household), field: field, pick: pick, value: value, breakGlass: breakGlass),
                action: "resolve")
            CLIContext.current.emit(result) {
                "Resolved \(result.field) on \(result.household): value \(result.valueID) supersedes \(result.superseded.joined(separator: ", ")). Devices get it at their next sync."
            }
        }
    }

    struct Rejects: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "rejects", abstract: "The quarantine of rejected ops: list, --requeue ID (after a grant) or --discard ID.")
        @Option(help: "Check this quarantined op again (after a grant) and merge it if it now passes (its ID from the list).") var requeue: Int64?
        @Option(help: "Drop this quarantined op (its ID from the list; audited).") var discard: Int64?
        func validate() throws {
            if requeue != nil && discard != nil { throw ValidationError("Give --requeue or --discard, not both.") }
        }
        func run() async throws {
            let client = try AdminCommand.client()
            if let id = requeue ?? discard {
                let action = requeue != nil ? "requeue" : "discard"
                let result: AdminAPI.RejectAction = try await client.json("POST", "v1/admin/rejects/\(id)/\(action)", body: NoBody?.none, action: action)
                CLIContext.current.emit(result) { result.message }
                return
            }
            let entries: [AdminAPI.RejectEntry] = try await client.json("GET", "v1/admin/rejects", body: NoBody?.none, action: "rejects")
            CLIContext.current.emit(entries) {
                if entries.isEmpty { return "The quarantine is empty." }
                return Table.render(["ID", "HOUSEHOLD", "PURPOSE", "USER", "CHANGE", "REASON", "STATUS"], entries.map {
                    [String($0.id), String($0.household.description.prefix(8)), $0.purpose.rawValue, $0.user, $0.kind + ($0.name.map { " " + $0 } ?? ""), $0.reason, $0.status]
                })
            }
        }
    }

    struct Audit: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "audit", abstract: "Read the audit log, or --verify its HMAC chain and anchors.")
        @Option(help: "Only rows about this household (its full ID).") var household: String?
        @Flag(help: "Check the HMAC chain and the anchors instead of listing rows.") var verify = false
        @Option(help: "How many recent rows.") var limit = 200
        func run() async throws {
            let client = try AdminCommand.client()
            if verify {
                let result: AuditVerification = try await client.json("GET", "v1/admin/audit/verify", body: NoBody?.none, action: "audit verify")
                CLIContext.current.emit(result) {
                    guard result.ok else { return "AUDIT CHAIN BROKEN: \(result.problem ?? "unknown problem") (\(result.rows) rows verified before it)." }
                    var text = "Audit chain verified: \(result.rows) rows, \(result.anchorsChecked) anchors match."
                    if result.anchorsChecked == 0, result.rows > 0 {
                        // Without an anchor a cut-off tail of the log verifies too: say so.
                        text += "\nNo anchor to check: the head is anchored every 5 minutes and at shutdown, so until then (or if audit.anchors "
                            + "was lost) rows removed from the end of the log would not be noticed."
                    }
                    return text
                }
                if !result.ok {
                    var error = CLIError(.other, "The audit chain does not verify.", code: "auditBroken")
                    error.reported = CLIContext.current.json
                    throw error
                }
                return
            }
            var query = ["limit": String(limit)]
            if let household { query["household"] = try AdminCommand.household(household).description }
            let rows: [AuditRecord] = try await client.json("GET", "v1/admin/audit", body: NoBody?.none, query: query, action: "audit")
            CLIContext.current.emit(rows) {
                Table.render(["SEQ", "TIME", "ACTOR", "ACTION", "HOUSEHOLD", "PURPOSE", "N", "DETAIL"], rows.map {
                    [String($0.seq), TimeText.iso($0.at), $0.actor, $0.action, String(($0.household ?? "").prefix(8)), $0.purpose, String($0.count), $0.detail]
                })
            }
        }
    }

    struct Erase: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
        commandName: "erase",
            abstract: "Erase a household (or one purpose) on the server (AVG art. 17); then lists devices that still hold it.",
            discussion: "Follow an erasure up with --status, which erases nothing: it lists the devices that have not purged yet. (Running the erase again would also erase anything written since.)")
        @Argument(help: "The household's full ID ('fieldcli admin households' lists them).") var household: String
        @Option(help: "Only this purpose, e.g. WGS (default: the whole household).") var purpose: String?
        @Flag(help: "Erase nothing: show the last erasure and the devices that still hold it.") var status = false
        func run() async throws {
            let id = try AdminCommand.household(household)
            let result: AdminAPI.EraseResult = status
                ? try await AdminCommand.client().json("GET", "v1/admin/erasures", body: NoBody?.none,
                                                       query: ["household": id.description, "purpose": purpose?.uppercased() ?? ""], action: "erase --status")
                : try await AdminCommand.client().json("POST", "v1/admin/erase",
                                                       body: AdminAPI.Erase(household: id, purpose: purpose.map { Purpose($0.uppercased()) }), action: "erase")
            CLIContext.current.emit(result) {
                let quarantined = result.quarantinedErased ?? 0
                var lines = result.erased.isEmpty
                    ? (result.erasedBefore.isEmpty ? [] : ["\(status ? "Erased before" : quarantined > 0 ? "No segment left to erase" : "Nothing left to erase"): \(result.erasedBefore.map { "\($0.purpose) (epoch \($0.oldEpoch)→\($0.newEpoch))" }.joined(separator: ", ")) of \(result.household)."])
                    : ["Erased \(result.erased.map { "\($0.purpose) (epoch \($0.oldEpoch)→\($0.newEpoch))" }.joined(separator: ", ")) of \(result.household)."]
                if quarantined > 0 { lines.append("Erased \(quarantined) quarantined change(s) of \(result.household)\(purpose.map { " (\($0.uppercased()))" } ?? "").") }
                if result.devicesStillHolding.isEmpty {
                    lines.append("No device reports holding it.")
                } else {
                    lines.append("Devices that still hold it (they purge at their next sync):")
                    for device in result.devicesStillHolding {
                        lines.append("  \(device.name) (\(device.user), \(device.device)): \(device.purposes.map(\.rawValue).joined(separator: ", "))")
                    }
                }
                return lines.joined(separator: "\n")
            }
        }
    }

    struct ConsentBlock: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "consent-block",
            abstract: "Record a consent withdrawal for a household (one purpose, or all but REGIE); --remove lifts it.")
        @Argument(help: "The household's full ID ('fieldcli admin households' lists them).") var household: String
        @Option(help: "Only this purpose, e.g. WGS (default: the whole household).") var purpose: String?
        @Flag(help: "Lift the block instead (consent given again).") var remove = false
        func run() async throws {
            AdminCommand.done(try await AdminCommand.client().json("POST", remove ? "v1/admin/consent-blocks/remove" : "v1/admin/consent-blocks",
                body: AdminAPI.ConsentBlockRequest(household: try AdminCommand.household(household), purpose: purpose.map { Purpose($0.uppercased()) }),
                action: "consent-block"))
        }
    }
}
