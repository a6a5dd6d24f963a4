// Types of scripts/peers.mjs for the tests and benchmarks that import it.
export declare const TEST_PEERS: Record<string, string>;
export declare const BENCH_PEERS: Record<string, string>;
export declare function which(bin: string): string | null;
export declare function peer(bin: string): string;
export declare function peersMissing(peers?: Record<string, string>): string[];
export declare function requirePeers(bins: string[]): void;
export declare function installPeers(missing: string[], what?: string): boolean;
