/// <reference types="svelte" />
/// <reference types="vite/client" />

/** The app version from ui/package.json, set by vite.config.ts. */
declare const __APP_VERSION__: string;
