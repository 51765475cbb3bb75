//! The deployment's console configuration, `/console/config.json`, served by the console
//! function from its environment: where the API and the live tail are, and the pinned keys the
//! browser verifies checkpoints against (never taken from the API itself).

export interface ConsoleConfig {
  api_base: string;
  tail_url: string | null;
  checkpoint_keys: string[];
  global_log_keys: string[];
}

export async function loadConfig(): Promise<ConsoleConfig> {
  const response = await fetch("/console/config.json", { cache: "no-cache", credentials: "omit" });
  if (!response.ok) throw new Error(`the console configuration could not be read (HTTP ${response.status})`);
  const c = (await response.json()) as Partial<ConsoleConfig>;
  return {
    api_base: c.api_base || "/",
    tail_url: c.tail_url || null,
    checkpoint_keys: c.checkpoint_keys ?? [],
    global_log_keys: c.global_log_keys ?? [],
  };
}
