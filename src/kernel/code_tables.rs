//! National code tables referenced by GB/T 31000 for person fields
//! (table 8 网格化建设, table 9 楼栋长): GB/T 2261.1 性别, GB/T 3304 民族,
//! GB/T 4762 政治面貌, GB/T 4658 学历. Values are the standards' codes and
//! names; they are data, not UI text, so they live here rather than in the
//! message catalogue.

pub struct CodeTable {
    pub id: &'static str,
    pub entries: &'static [(&'static str, &'static str)],
}

impl CodeTable {
    pub fn name_of(&self, code: &str) -> Option<&'static str> {
        self.entries.iter().find(|(c, _)| *c == code).map(|(_, n)| *n)
    }

    pub fn contains(&self, code: &str) -> bool {
        self.name_of(code).is_some()
    }
}

pub const GENDER: CodeTable = CodeTable {
    id: "gb2261_1",
    entries: &[("0", "未知的性别"), ("1", "男"), ("2", "女"), ("9", "未说明的性别")],
};

pub const ETHNICITY: CodeTable = CodeTable {
    id: "gb3304",
    entries: &[
        ("01", "汉族"),
        ("02", "蒙古族"),
        ("03", "回族"),
        ("04", "藏族"),
        ("05", "维吾尔族"),
        ("06", "苗族"),
        ("07", "彝族"),
        ("08", "壮族"),
        ("09", "布依族"),
        ("10", "朝鲜族"),
        ("11", "满族"),
        ("12", "侗族"),
        ("13", "瑶族"),
        ("14", "白族"),
        ("15", "土家族"),
        ("16", "哈尼族"),
        ("17", "哈萨克族"),
        ("18", "傣族"),
        ("19", "黎族"),
        ("20", "傈僳族"),
        ("21", "佤族"),
        ("22", "畲族"),
        ("23", "高山族"),
        ("24", "拉祜族"),
        ("25", "水族"),
        ("26", "东乡族"),
        ("27", "纳西族"),
        ("28", "景颇族"),
        ("29", "柯尔克孜族"),
        ("30", "土族"),
        ("31", "达斡尔族"),
        ("32", "仫佬族"),
        ("33", "羌族"),
        ("34", "布朗族"),
        ("35", "撒拉族"),
        ("36", "毛南族"),
        ("37", "仡佬族"),
        ("38", "锡伯族"),
        ("39", "阿昌族"),
        ("40", "普米族"),
        ("41", "塔吉克族"),
        ("42", "怒族"),
        ("43", "乌孜别克族"),
        ("44", "俄罗斯族"),
        ("45", "鄂温克族"),
        ("46", "德昂族"),
        ("47", "保安族"),
        ("48", "裕固族"),
        ("49", "京族"),
        ("50", "塔塔尔族"),
        ("51", "独龙族"),
        ("52", "鄂伦春族"),
        ("53", "赫哲族"),
        ("54", "门巴族"),
        ("55", "珞巴族"),
        ("56", "基诺族"),
        ("97", "其他"),
        ("98", "外国血统中国籍人士"),
    ],
};

pub const POLITICAL_STATUS: CodeTable = CodeTable {
    id: "gb4762",
    entries: &[
        ("01", "中国共产党党员"),
        ("02", "中国共产党预备党员"),
        ("03", "中国共产主义青年团团员"),
        ("04", "中国国民党革命委员会会员"),
        ("05", "中国民主同盟盟员"),
        ("06", "中国民主建国会会员"),
        ("07", "中国民主促进会会员"),
        ("08", "中国农工民主党党员"),
        ("09", "中国致公党党员"),
        ("10", "九三学社社员"),
        ("11", "台湾民主自治同盟盟员"),
        ("12", "无党派民主人士"),
        ("13", "群众"),
    ],
};

pub const EDUCATION: CodeTable = CodeTable {
    id: "gb4658",
    entries: &[
        ("10", "研究生教育"),
        ("11", "博士研究生"),
        ("14", "硕士研究生"),
        ("20", "大学本科"),
        ("30", "大学专科"),
        ("40", "中等职业教育"),
        ("60", "普通高级中学"),
        ("70", "初级中学"),
        ("80", "小学"),
        ("90", "其他"),
    ],
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_have_unique_codes() {
        for table in [&GENDER, &ETHNICITY, &POLITICAL_STATUS, &EDUCATION] {
            let mut codes: Vec<_> = table.entries.iter().map(|(c, _)| *c).collect();
            codes.sort();
            codes.dedup();
            assert_eq!(codes.len(), table.entries.len(), "{}", table.id);
        }
        assert_eq!(ETHNICITY.entries.len(), 58);
        assert_eq!(ETHNICITY.name_of("01"), Some("汉族"));
    }
}
