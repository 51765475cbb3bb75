// `npm run bench`: page timings and in-browser verification figures, against a local run.
import { defineConfig } from "@playwright/test";
import base from "./playwright.config";

export default defineConfig({ ...base, testDir: "bench", testMatch: /.*\.bench\.ts/, timeout: 180_000 });
