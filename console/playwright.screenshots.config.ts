// `npm run screenshots`: the console's main screens as PNGs in docs/console/, against a local run.
import { defineConfig } from "@playwright/test";
import base from "./playwright.config";

export default defineConfig({ ...base, testDir: "screenshots", testMatch: /.*\.ts/ });
