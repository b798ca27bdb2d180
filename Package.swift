// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "FieldSync",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "SyncCore", targets: ["SyncCore"]),
        .library(name: "SyncServer", targets: ["SyncServer"]),
        .executable(name: "fieldsyncd", targets: ["fieldsyncd"]),
        .executable(name: "fieldcli", targets: ["fieldcli"]),
        .executable(name: "fieldbench", targets: ["fieldbench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    ],
    targets: [
        // Foundation only: the record model, CRDTs, policy and protocol shared by server and devices.
        .target(name: "SyncCore", resources: [.copy("Resources/household-plan.schema.json"), .copy("Resources/default-policy.json")]),
        // zlib through the system library, for the transport's gzip (DESIGN §5).
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .target(
            name: "SyncServer",
            dependencies: [
                "SyncCore", "CZlib",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "fieldsyncd",
            dependencies: [
                "SyncServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "fieldcli",
            dependencies: ["FieldCLI"]
        ),
        .target(
            name: "FieldCLI",
            dependencies: [
                "SyncCore", "SyncServer", "CZlib",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
                // scrypt, for the optional passphrase on the device key (DESIGN §7).
                .product(name: "CryptoExtras", package: "swift-crypto"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "fieldbench",
            dependencies: ["FieldBench", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .target(
            name: "FieldBench",
            dependencies: [
                "SyncCore", "SyncServer", "FieldCLI",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                // A lean keep-alive HTTP client for the load generator (BenchConnection).
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        .testTarget(name: "SyncCoreTests", dependencies: ["SyncCore"]),
        .testTarget(
            name: "SyncServerTests",
            dependencies: [
                "SyncServer", "SyncCore",
                // Tests read and tamper with the store file directly (audit tamper, byte-identical state checks).
                .product(name: "GRDB", package: "GRDB.swift"),
                // Tests capture the server's log lines to check they carry no personal data.
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(name: "FieldCLITests", dependencies: ["FieldCLI", "SyncServer", "SyncCore", "FieldBench"]),
    ]
)

for target in package.targets where target.type != .system {
    target.swiftSettings = (target.swiftSettings ?? []) + [
        .enableUpcomingFeature("ExistentialAny"),
        .enableUpcomingFeature("MemberImportVisibility"),
        .enableUpcomingFeature("InternalImportsByDefault"),
    ]
}
