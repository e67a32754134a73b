-- Started: 2026-11-20 03:00:00
SET NAMES 'utf8';
-- -----------------------------------
-- Dumping table b_sample
-- -----------------------------------
DROP TABLE IF EXISTS `b_sample`;
CREATE TABLE `b_sample` (
  `ID` int(11) NOT NULL,
  `VALUE` text DEFAULT NULL,
  `DATA` blob DEFAULT NULL,
  PRIMARY KEY (`ID`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb3 COLLATE=utf8mb3_unicode_ci;

INSERT INTO `b_sample` VALUES
(1, 'first', 0x00ff10),
(2, 'a),(b', ''),
(3, 'semi;\nnewline', NULL);
INSERT INTO `b_sample` VALUES
(2, 'duplicate of 2: skipped', NULL),
(3, 'duplicate of 3: skipped', NULL),
(4, 'x),(y\');\n(\'z', 0x41),
(5, 'Привет; «мир»', NULL);
-- -----------------------------------
-- Creating empty table b_stat_sample
-- -----------------------------------
CREATE TABLE IF NOT EXISTS `b_stat_sample` (
  `ID` int(11) NOT NULL,
  `NAME` varchar(50) DEFAULT NULL,
  PRIMARY KEY (`ID`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb3 COLLATE=utf8mb3_unicode_ci;

INSERT INTO `b_stat_sample` VALUES
(1, 'from the dump: skipped when the row is there'),
(2, 'from the dump, 2'),
(3, 'from the dump, 3),(3');
-- Finished: 2026-11-20 03:00:05