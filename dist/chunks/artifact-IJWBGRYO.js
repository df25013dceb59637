import { createRequire as __rfCreateRequire } from 'node:module';
import { fileURLToPath as __rfFileURLToPath } from 'node:url';
import { dirname as __rfDirname } from 'node:path';
var require = __rfCreateRequire(import.meta.url);
var __filename = __rfFileURLToPath(import.meta.url);
var __dirname = __rfDirname(__filename);
import {
  ArtifactStore,
  defaultArtifactName,
  tempRoot
} from "./chunk-4AZMLS3B.js";
import "./chunk-AQZU7JLI.js";
import "./chunk-BX324FB7.js";
import "./chunk-AZGC3HDP.js";
export {
  ArtifactStore,
  defaultArtifactName,
  tempRoot
};
